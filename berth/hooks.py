"""A small registry for reverse flows: the platform announces events, the broker listens.

The platform may not import the broker (DESIGN.md), yet destroying an app must deprovision
its add-ons; create_app wires the broker's listener here instead.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

Listener = Callable[..., None]

APP_DESTROYING = "app.destroying"


class Hooks:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    def register(self, event: str, listener: Listener) -> None:
        self._listeners[event].append(listener)

    def fire(self, event: str, **payload: Any) -> None:
        # Listeners run inside the caller's transaction: a failure aborts the whole change.
        for listener in self._listeners.get(event, []):
            listener(**payload)
