"""GET /openapi.json: the API described from the schemas each view declares."""
from __future__ import annotations

from typing import Any

from flask import current_app

from berth.httpapi.context import public
from berth.httpapi.openapi import build_spec
from berth.platform.api import blueprint

API_VERSION = "3"


@blueprint.get("/openapi.json")
@public
def openapi_document() -> Any:
    cached = current_app.extensions.get("berth.openapi")
    if cached is None:
        cached = current_app.extensions["berth.openapi"] = build_spec(current_app, API_VERSION)
    return cached
