"""The partner portal: publish an add-on service from its manifest and see who uses it."""
from __future__ import annotations

from typing import Any

from berth.web.pages import blueprint, login_required, render

Reply = Any


@blueprint.get("/partners")
@login_required
def partner_services() -> Reply:
    return render("web/partners/services.html", services=[])
