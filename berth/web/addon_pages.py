"""One add-on on an app: its status while provisioning, plan changes, removal, SSO."""
from __future__ import annotations

from typing import Any

from berth.web.pages import blueprint, login_required

Reply = Any


@blueprint.get("/dashboard/apps/<app_ref>/addons/<addon_ref>")
@login_required
def addon_page(app_ref: str, addon_ref: str) -> Reply:
    raise NotImplementedError


@blueprint.post("/dashboard/apps/<app_ref>/addons/<addon_ref>/open")
@login_required
def open_addon(app_ref: str, addon_ref: str) -> Reply:
    raise NotImplementedError
