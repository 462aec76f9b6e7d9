"""The add-on marketplace: the catalogue, a page per service, installing an add-on."""
from __future__ import annotations

from typing import Any

from berth.broker import catalogue
from berth.httpapi.context import db_session
from berth.web.pages import blueprint, render

Reply = Any


@blueprint.get("/marketplace")
def catalogue_page() -> Reply:
    services = list(db_session().scalars(catalogue.services_query()))
    return render("web/marketplace/catalogue.html", services=services)
