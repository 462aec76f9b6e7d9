"""Heroku `Range` pagination: parse the header, page with a keyset query, answer 200 or 206.

Real clients send `version ..; order=desc,max=1`, `version ..; max=1, order=desc`,
`id ..; ;` and `name ..; max=10;`: separators are `;` and `,` interchangeably.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from berth.errors import BadRequest
from berth.httpapi.timestamps import parse_timestamp

DEFAULT_MAX = 200
LIMIT_MAX = 1000
INT32 = 2**31
INVALID_RANGE = "Invalid `Range` header. Please use format like `id ..; max=10, order=desc`."
_FIRST_TOKEN = re.compile(r"^(?P<field>[A-Za-z_]+)(?:\s+(?P<range>\S*))?$")


@dataclass(frozen=True)
class RangeSpec:
    field: str
    start: str | None = None
    inclusive: bool = True
    max: int = DEFAULT_MAX
    order: str = "asc"
    order_given: bool = False


def parse_range(header: str | None, fields: Sequence[str], default: str) -> RangeSpec:
    parts = [part.strip() for part in re.split(r"[;,]", header or "")]
    parts = [part for part in parts if part]
    if not parts:
        return RangeSpec(field=default)
    match = _FIRST_TOKEN.match(parts[0])
    if not match:
        raise BadRequest(INVALID_RANGE)
    bounds = match.group("range") or ""
    if ".." not in bounds:
        raise BadRequest(INVALID_RANGE)
    start_text = bounds.split("..", 1)[0]
    inclusive = not start_text.startswith("]")
    start = start_text.lstrip("[]") or None
    spec_field = match.group("field")
    if spec_field not in fields:
        # Berth's choice: an unknown sort field falls back to the default, ignoring its bound.
        spec_field, start = default, None
    limit, order, order_given = DEFAULT_MAX, "asc", False
    for option in parts[1:]:
        key, sep, value = (piece.strip() for piece in option.partition("="))
        if not sep:
            raise BadRequest(INVALID_RANGE)
        if key == "max":
            if not value.isdigit() or int(value) < 1:
                raise BadRequest(INVALID_RANGE)
            limit = min(int(value), LIMIT_MAX)
        elif key == "order":
            if value not in ("asc", "desc"):
                raise BadRequest(INVALID_RANGE)
            order, order_given = value, True
    return RangeSpec(spec_field, start, inclusive, limit, order, order_given)


def _to_value(column: InstrumentedAttribute[Any], text: str) -> Any:
    column_type = column.type
    # A TypeDecorator (UTCDateTime) reports its own python_type as `object`: ask its impl.
    python_type = getattr(column_type, "impl_instance", column_type).python_type
    try:
        if python_type is int:
            value = int(text)
            if not -INT32 <= value < INT32:  # beyond what the column can hold
                raise ValueError(text)
            return value
        if python_type is datetime:
            return parse_timestamp(text)
    except ValueError:
        raise BadRequest(INVALID_RANGE) from None
    return text


def _to_text(value: Any) -> str:
    # Full precision: a bound rounded to the second would repeat rows on the next page.
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return str(value)


@dataclass
class Page:
    rows: list[Any]
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200

    def respond(self, body: Any) -> tuple[Any, int, dict[str, str]]:
        return body, self.status, self.headers


def paginate(session: Session, query: Select[Any], columns: dict[str, InstrumentedAttribute[Any]],
             header: str | None, default: str = "id",
             tie_breaker: InstrumentedAttribute[Any] | None = None,
             transform: Callable[[Any], Any] | None = None) -> Page:
    """`columns` maps the sortable field names of this list to model columns."""
    spec = parse_range(header, list(columns), default)
    column = columns[spec.field]
    descending = spec.order == "desc"
    if spec.start is not None:
        value = _to_value(column, spec.start)
        if descending:
            query = query.where(column <= value if spec.inclusive else column < value)
        else:
            query = query.where(column >= value if spec.inclusive else column > value)
    order = [column.desc() if descending else column.asc()]
    if tie_breaker is not None and tie_breaker is not column:
        order.append(tie_breaker.desc() if descending else tie_breaker.asc())
    rows = list(session.scalars(query.order_by(*order).limit(spec.max + 1)).unique())
    more = len(rows) > spec.max
    rows = rows[: spec.max]
    headers = {"Accept-Ranges": ", ".join(columns)}
    status = 200
    if rows:
        first = _to_text(getattr(rows[0], column.key))
        last = _to_text(getattr(rows[-1], column.key))
        headers["Content-Range"] = f"{spec.field} {first}..{last}"
        if more:
            status = 206
            next_range = f"{spec.field} ]{last}..; max={spec.max}"
            if spec.order_given:
                next_range += f", order={spec.order}"
            headers["Next-Range"] = next_range
    return Page(rows=[transform(r) for r in rows] if transform else rows, headers=headers,
                status=status)
