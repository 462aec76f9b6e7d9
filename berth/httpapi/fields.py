"""Marshmallow fields shared by every API: timestamps, strict booleans, Heroku-style references."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields

from berth.httpapi.timestamps import format_timestamp


class Timestamp(fields.Field):
    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return format_timestamp(value)


def strict_boolean(**kwargs: Any) -> fields.Boolean:
    """JSON true/false (and 0/1, which heroku3 sends for maintenance); "yes" is a type error."""
    return fields.Boolean(truthy={True}, falsy={False}, **kwargs)


class JsonBoolean(fields.Boolean):
    """JSON true or false only: 0, 1 and strings are refused (what /openapi.json promises)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Reference(fields.Field):
    """A related object named by a string, {"name": ...} (Heroku CLI) or {"id": ...}."""

    KEYS = ("id", "name", "email")  # the first one present names the object
    default_error_messages = {"invalid": "Must be a name, an id, or an object with a name or an id."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, dict):
            if not value or set(value) - set(self.KEYS):
                raise self.make_error("invalid")
            value = next(value[key] for key in self.KEYS if key in value)
        if not isinstance(value, str) or not value.strip():
            raise self.make_error("invalid")
        return value.strip()


class ScalarString(fields.Field):
    """A string; numbers and booleans are coerced as Heroku does; objects and lists refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, str):
            return value
        raise ValidationError("Must be a string or null.")
