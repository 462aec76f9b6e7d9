"""The broker's JSON API blueprint: HTTP only, one module per resource."""
from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("broker", __name__)

# Route modules register themselves on the blueprint when imported.
from berth.broker.api import addons, attachment_resolve, attachments, catalogue, partner  # noqa: E402,F401
