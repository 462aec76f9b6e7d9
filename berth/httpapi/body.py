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


# Heroku's bodies are a level or two deep; OSB and partner parameters a few more.
MAX_JSON_DEPTH = 64


def json_body() -> Any:
    """The decoded body; an empty body counts as `{}` (some clients POST with none)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return parse_json(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadRequest(f"Request body is not valid JSON: {exc}.") from None


def parse_json(raw: bytes | str, *, what: str = "Request body") -> Any:
    """json.loads, refusing (BadRequest) what decodes but no code or database can hold: nesting
    deeper than MAX_JSON_DEPTH (Python's recursion limit) and lone UTF-16 surrogates (`"\\ud800"`,
    which no UTF-8 encoder accepts). Malformed JSON raises ValueError for the caller to word."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadRequest(_too_deep(what)) from None
    _refuse_unholdable(value, what)
    return value


def _too_deep(what: str) -> str:
    return (f"{what} is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects "
            f"are accepted. Send flatter JSON.")


def _refuse_unholdable(value: Any, what: str) -> None:
    pending: list[tuple[Any, int]] = [(value, 0)]  # a loop, not recursion: depth is the danger
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _refuse_surrogates(item, what)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise BadRequest(_too_deep(what))
        if isinstance(item, dict):
            for key, child in item.items():
                _refuse_surrogates(key, what)
                pending.append((child, depth + 1))
        else:
            pending.extend((child, depth + 1) for child in item)


def _refuse_surrogates(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{what} contains a lone UTF-16 surrogate (\\ud800 to \\udfff), which is "
                         f"not text. Send valid Unicode.") from None


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
