"""The Platform API blueprint (Heroku Platform API v3 compatible): HTTP only, one module per resource."""
from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("platform", __name__)

# Route modules register themselves on the blueprint when imported.
from berth.platform.api import account, app_setups, apps, buildpacks, builds, config, deploys, domains, dynos, formation, git, logs, meta, release_output, sources, stacks  # noqa: E402,F401,E501
