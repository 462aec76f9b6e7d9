"""Marshmallow schemas of log sessions and log drains."""
from __future__ import annotations

from typing import Any, Callable

from marshmallow import Schema, fields, post_load, validate

from berth.httpapi.body import InputSchema
from berth.httpapi.fields import Timestamp, strict_boolean
from berth.httpapi.timestamps import format_timestamp
from berth.platform.logs.models import LogDrain, LogSession
from berth.platform.logs.store import LABEL_LENGTH, MAX_LINES_PER_APP
from berth.platform.models import App

# (owner) -> {id, name, app{id,name}} of the add-on that owns a drain, or None.
AddonLookup = Callable[[str], "dict[str, Any] | None"]


def _label(**kwargs: Any) -> fields.String:
    return fields.String(allow_none=True, load_default=None,
                         validate=validate.Length(max=LABEL_LENGTH), **kwargs)


class LogSessionCreateSchema(InputSchema):
    lines = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LINES_PER_APP))
    tail = strict_boolean(load_default=False)
    source = _label()
    dyno = _label()
    type = _label(metadata={"description": "a process type; the same filter as dyno"})

    @post_load
    def _one_filter(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # Older CLIs send the process type as `type`; both filter by prefix, so fold them.
        kind = data.pop("type", None)
        data["dyno"] = data.get("dyno") or kind or None
        data["source"] = data.get("source") or None
        return data


class LogSessionSchema(Schema):
    id = fields.String()
    logplex_url = fields.Method("_url")
    created_at = Timestamp()
    updated_at = fields.Function(lambda log_session: format_timestamp(log_session.created_at))

    # Defaults only so the OpenAPI generator can make one without a request.
    def __init__(self, *, api_url: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_url = api_url

    def _url(self, log_session: LogSession) -> str:
        return f"{self.api_url}/log-sessions/{log_session.id}"


class LogDrainCreateSchema(InputSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class LogDrainSchema(Schema):
    id = fields.String()
    url = fields.String()
    token = fields.String()
    addon = fields.Method("_addon")
    app = fields.Method("_app")
    created_at = Timestamp()
    updated_at = Timestamp()

    # Defaults only so the OpenAPI generator can make one without a request.
    def __init__(self, *, app: App | None = None, addon_for: AddonLookup | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owning_app = app
        self.addon_for = addon_for

    def _addon(self, drain: LogDrain) -> dict[str, Any] | None:
        if drain.owner is None or self.addon_for is None:
            return None
        return self.addon_for(drain.owner)

    def _app(self, drain: LogDrain) -> dict[str, str] | None:
        app = self.owning_app
        return None if app is None else {"id": app.id, "name": app.name}
