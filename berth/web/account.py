"""The account page: who you are, and your API keys (create, shown once, revoke)."""
from __future__ import annotations

from typing import Any

from berth.web.pages import blueprint, login_required, render

Reply = Any


@blueprint.get("/dashboard/account")
@login_required
def account_page() -> Reply:
    return render("web/dashboard/account.html")
