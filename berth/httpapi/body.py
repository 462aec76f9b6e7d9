"""Request bodies: JSON decoding and marshmallow validation, failing as Heroku-shaped errors."""
from __future__ import annotations

import json
from typing import Any, ClassVar

from flask import request
from marshmallow import RAISE, Schema, ValidationError, pre_load

from berth.errors import BadRequest, InvalidParams


class InputSchema(Schema):
    """Unknown fields are refused, except the ones real clients are known to send (TOLERATED)."""

    TOLERATED: ClassVar[frozenset[str]] = frozenset()

    class Meta:
        unknown = RAISE

    @pre_load
    def _drop_tolerated(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict) and self.TOLERATED:
            return {k: v for k, v in data.items() if k not in self.TOLERATED}
        return data


def json_body() -> Any:
    """The decoded body; an empty body counts as `{}` (some clients POST with none)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}.") from None


def describe_validation_error(error: ValidationError) -> str:
    messages = error.messages
    if isinstance(messages, dict):
        parts = []
        for field_name, problems in sorted(messages.items(), key=lambda item: str(item[0])):
            text = _flatten(problems)
            parts.append(text if field_name == "_schema" else f"{field_name}: {text}")
        return "Invalid parameters. " + " ".join(parts)
    return "Invalid parameters. " + _flatten(messages)


def _flatten(problems: Any) -> str:
    if isinstance(problems, dict):
        return " ".join(f"{key}: {_flatten(value)}" for key, value in problems.items())
    if isinstance(problems, list):
        return " ".join(_flatten(p) for p in problems)
    return str(problems)


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


def load(schema: Schema, data: Any | None = None) -> Any:
    payload = json_body() if data is None else data
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object.")
    # No database stores NUL in text (PostgreSQL refuses it): say so instead of failing later.
    if _contains_nul(payload):
        raise InvalidParams("Invalid parameters. Text must not contain NUL characters.")
    try:
        return schema.load(payload)
    except ValidationError as error:
        raise InvalidParams(describe_validation_error(error)) from None
