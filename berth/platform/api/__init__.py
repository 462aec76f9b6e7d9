"""The Platform API blueprint (Heroku Platform API v3 compatible): HTTP only, one module per resource."""
from __future__ import annotations

from typing import Any

from flask import Blueprint

from berth.errors import ServiceUnavailable
from berth.httpapi.conventions import render_error
from berth.platform.slug_store import StorageUnavailable

blueprint = Blueprint("platform", __name__)


@blueprint.errorhandler(StorageUnavailable)
def _storage_unavailable(error: StorageUnavailable) -> Any:
    """The S3 slug store is down or refuses Berth: 503 with what to do, never a hang or a bare 500."""
    return render_error(ServiceUnavailable(str(error)))

# Route modules register themselves on the blueprint when imported.
from berth.platform.api import account, app_setups, apps, buildpacks, builds, config, deploys, domains, dynos, formation, git, logs, meta, release_output, sources, stacks  # noqa: E402,F401,E501
