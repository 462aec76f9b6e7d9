"""The dashboard: the signed-in user's apps, and each app's pages."""
from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from berth.errors import BerthError
from berth.httpapi.body import load
from berth.httpapi.context import current_account, db_session
from berth.platform import apps
from berth.platform.models import App
from berth.platform.schemas import AppCreateSchema
from berth.web.pages import blueprint, form_error, login_required, render, settings

Reply = Any


def _my_apps() -> list[App]:
    return list(db_session().scalars(apps.visible_apps_query(current_account().id).order_by(App.name)))


@blueprint.get("/dashboard")
@login_required
def apps_page() -> Reply:
    return render("web/dashboard/apps.html", apps=_my_apps(), form={})


@blueprint.post("/dashboard/apps")
@login_required
def create_app_page() -> Reply:
    name = (request.form.get("name") or "").strip() or None
    try:
        data = load(AppCreateSchema(), {"name": name})
        app = apps.create_app(db_session(), settings(), current_account(), name=data["name"])
    except BerthError as error:
        return form_error("web/dashboard/apps.html", error, apps=_my_apps())
    return redirect(url_for("web.app_page", app_ref=app.name), 303)


@blueprint.get("/dashboard/apps/<app_ref>")
@login_required
def app_page(app_ref: str) -> Reply:
    app = apps.get_app(db_session(), current_account().id, app_ref)
    return render("web/dashboard/app.html", app=app, tab="resources")
