"""A first-party plan as its manifest lists it (Berth's `plans` extension of the partner manifest)."""
from __future__ import annotations

from typing import Iterable


def plan_entry(*, name: str, human_name: str, description: str, cents: int, default: bool,
               features: Iterable[tuple[str, str]]) -> dict[str, object]:
    """Prices are per month; `features` are (name, value) pairs the marketplace shows."""
    return {"name": name, "human_name": human_name, "description": description,
            "price": {"cents": cents, "unit": "month"}, "default": default,
            "features": [{"name": feature, "value": value} for feature, value in features]}
