"""The dashboard: the signed-in user's apps, and each app's pages (tabs under one layout).

Every app page finds the app with `apps.get_app` as the API does, so an app the visitor may not
see is a 404 page (the Builds and Activity tabs are in deploy_pages); changes go through the API's schemas and service functions, so the pages
refuse exactly what the API refuses, with the same message.
"""
from __future__ import annotations

import re
from typing import Any

from flask import flash, get_flashed_messages, redirect, request, url_for
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from berth.broker import finders
from berth.broker.models import AddOn, Attachment
from berth.errors import BerthError
from berth.httpapi.body import load
from berth.httpapi.context import current_account, db_session
from berth.platform import apps, collaborators, config_vars, dyno_sizes, dynos_view, formation
from berth.platform.formation_schemas import FormationChangeSchema
from berth.platform.logs import store
from berth.platform.models import App, Collaborator, ConfigVar
from berth.platform.schemas import AppCreateSchema, CollaboratorCreateSchema, ConfigVarsPatchSchema
from berth.web import addon_dashboard
from berth.web.pages import blueprint, form_error, login_required, render, settings

Reply = Any
MASK = "••••••••"
RECENT_LOG_LINES = 200
# (tab key, endpoint, label): the order of the tab nav on every app page.
TABS = [("resources", "web.app_page", "Resources"), ("formation", "web.app_formation", "Formation"),
        ("builds", "web.app_builds", "Builds"), ("activity", "web.app_activity", "Activity"),
        ("access", "web.app_access", "Access"), ("settings", "web.app_config", "Settings"),
        ("logs", "web.app_logs", "Logs")]


def _my_apps() -> list[App]:
    return list(db_session().scalars(apps.visible_apps_query(current_account().id).order_by(App.name)))


@blueprint.get("/dashboard")
@login_required
def apps_page() -> Reply:
    return render("web/dashboard/apps.html", apps=_my_apps(), form={}, notice=_notice())


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


# -- shared by the app pages ----------------------------------------------------------------------

def _find_app(app_ref: str) -> App:
    """Exactly the API's access check: another user's app is reported as missing (404)."""
    return apps.get_app(db_session(), current_account().id, app_ref)


def _notice() -> str | None:
    """The message a redirect after a change left (Flask's flash, kept in the session cookie)."""
    messages = get_flashed_messages()
    return messages[-1] if messages else None


def _app_page(tab: str, app: App, status: int = 200, *, template: str | None = None,
              **context: Any) -> tuple[str, int]:
    context.setdefault("form", {})
    context.setdefault("notice", _notice())
    return render(f"web/dashboard/{template or 'app_' + tab}.html", status, app=app, tab=tab, tabs=TABS,
                  is_owner=app.owner_id == current_account().id, **context)


def _app_error(tab: str, app: App, error: BerthError, **context: Any) -> tuple[str, int]:
    """The tab again with the API's message and what was typed; nothing is committed (4xx)."""
    return form_error(f"web/dashboard/app_{tab}.html", error, app=app, tab=tab, tabs=TABS,
                      is_owner=app.owner_id == current_account().id, **context)


def _done(endpoint: str, app: App, message: str) -> Reply:
    flash(message)
    return redirect(url_for(endpoint, app_ref=app.name), 303)


# -- Resources: the app's add-ons ---------------------------------------------------------------

def _app_addons(app: App) -> list[AddOn]:
    """The API's list (owned by or attached to the app), with service, plan and app joined and
    every attachment in one more query: no query per row."""
    attached = select(Attachment.addon_id).where(Attachment.app_id == app.id)
    query = (finders.listed_addons_query(current_account().id)
             .where(or_(AddOn.app_id == app.id, AddOn.id.in_(attached)))
             .options(selectinload(AddOn.attachments))
             .order_by(AddOn.name))
    return list(db_session().scalars(query))


@blueprint.get("/dashboard/apps/<app_ref>")
@login_required
def app_page(app_ref: str) -> Reply:
    app = _find_app(app_ref)
    # Attachments elsewhere are named only on apps the visitor may see, as the API lists them.
    visible = set(db_session().scalars(apps.visible_apps_query(current_account().id).with_only_columns(App.id)))
    return _app_page("resources", app, addons=_app_addons(app), visible_app_ids=visible,
                     has_sso_dashboard=addon_dashboard.has_sso_dashboard)


# -- Settings: config vars ----------------------------------------------------------------------

def _config_rows(app: App) -> list[ConfigVar]:
    return list(db_session().scalars(select(ConfigVar).where(ConfigVar.app_id == app.id)
                                     .order_by(ConfigVar.name)))


def _owners(rows: list[ConfigVar]) -> dict[str, Attachment]:
    """Attachment by id for the vars an add-on attachment owns (the owner column holds its id)."""
    ids = {row.owner for row in rows if row.owner}
    if not ids:
        return {}
    return {att.id: att for att in db_session().scalars(select(Attachment).where(Attachment.id.in_(ids)))}


def _config_page(app: App, status: int = 200, error: BerthError | None = None) -> tuple[str, int]:
    rows = _config_rows(app)
    reveal = request.args.get("reveal") if error is None else None
    context = {"rows": rows, "owners": _owners(rows), "reveal": reveal, "mask": MASK}
    if error is not None:
        return _app_error("settings", app, error, **context)
    return _app_page("settings", app, status, **context)


@blueprint.get("/dashboard/apps/<app_ref>/settings")
@login_required
def app_config(app_ref: str) -> Reply:
    return _config_page(_find_app(app_ref))


def _change_config(app_ref: str, name: str, value: str | None, message: str) -> Reply:
    """One var through the API's schema and `update_config` (which makes the release)."""
    app = _find_app(app_ref)
    try:
        changes = load(ConfigVarsPatchSchema(), {"config": {name: value}})["config"]
        config_vars.update_config(db_session(), app, current_account(), changes)
    except BerthError as error:
        return _config_page(app, error=error)
    return _done("web.app_config", app, message)


@blueprint.post("/dashboard/apps/<app_ref>/settings/config")
@login_required
def set_config_var(app_ref: str) -> Reply:
    name = (request.form.get("name") or "").strip()
    value = request.form.get("value") or ""
    return _change_config(app_ref, name, value, f"Set {name}.")


@blueprint.post("/dashboard/apps/<app_ref>/settings/config/remove")
@login_required
def remove_config_var(app_ref: str) -> Reply:
    name = (request.form.get("name") or "").strip()
    return _change_config(app_ref, name, None, f"Removed {name}.")


# -- Access: collaborators -----------------------------------------------------------------------

def _access_page(app: App, error: BerthError | None = None) -> tuple[str, int]:
    query = collaborators.collaborators_query(app).order_by(Collaborator.created_at)
    members = list(db_session().scalars(query))
    if error is not None:
        return _app_error("access", app, error, collaborators=members)
    return _app_page("access", app, collaborators=members)


@blueprint.get("/dashboard/apps/<app_ref>/access")
@login_required
def app_access(app_ref: str) -> Reply:
    return _access_page(_find_app(app_ref))


@blueprint.post("/dashboard/apps/<app_ref>/access")
@login_required
def add_collaborator_page(app_ref: str) -> Reply:
    app = _find_app(app_ref)
    try:
        params = load(CollaboratorCreateSchema(), {"user": (request.form.get("email") or "").strip()})
        added = collaborators.add_collaborator(db_session(), current_account(), app, params["user"])
    except BerthError as error:
        return _access_page(app, error)
    return _done("web.app_access", app, f"Added {added.account.email} as a collaborator.")


@blueprint.post("/dashboard/apps/<app_ref>/access/remove")
@login_required
def remove_collaborator_page(app_ref: str) -> Reply:
    app = _find_app(app_ref)
    try:
        removed = collaborators.remove_collaborator(db_session(), current_account(), app,
                                                    (request.form.get("user") or "").strip())
    except BerthError as error:
        return _access_page(app, error)
    if removed.account_id == current_account().id:  # left the app: its pages are gone for them
        flash(f"You are no longer a collaborator on {app.name}.")
        return redirect(url_for("web.apps_page"), 303)
    return _done("web.app_access", app, f"Removed {removed.account.email}.")


# -- Formation: scaling process types and the dynos running (restarts: dyno_pages), Logs -------

def _formation_context(app: App) -> dict[str, Any]:
    session = db_session()
    return {"processes": formation.list_formation(session, app), "sizes": dyno_sizes.SIZES,
            "max_dynos": dyno_sizes.MAX_DYNOS_PER_APP, "dynos": dynos_view.app_dynos(session, app)}


def _absolute(quantity: str) -> int | str:
    """The page's number is how many dynos, never a change: "-1" is -1 (refused), not one fewer."""
    return int(quantity) if re.fullmatch(r"[+-]?\d{1,9}", quantity) else quantity


@blueprint.get("/dashboard/apps/<app_ref>/formation")
@login_required
def app_formation(app_ref: str) -> Reply:
    app = _find_app(app_ref)
    return _app_page("formation", app, **_formation_context(app))


@blueprint.post("/dashboard/apps/<app_ref>/formation/<process_type>")
@login_required
def scale_formation_page(app_ref: str, process_type: str) -> Reply:
    app = _find_app(app_ref)
    session, account = db_session(), current_account()
    try:
        sent = {"quantity": (request.form.get("quantity") or "").strip(), "size": (request.form.get("size") or "").strip()}
        data = load(FormationChangeSchema(), {key: value for key, value in sent.items() if value})
        after = formation.update(session, app, account.email,
                                 [formation.Change(process_type, _absolute(data.get("quantity", "")), data.get("size"))])
    except BerthError as error:
        # Nothing was written (every check precedes the change): the page shows the formation as it is.
        return _app_error("formation", app, error, failed_type=process_type, **_formation_context(app))
    scaled = next(entry for entry in after if entry.type == process_type)
    return _done("web.app_formation", app, f"Scaled {process_type} to {scaled.quantity}:{scaled.size.name}.")


@blueprint.get("/dashboard/apps/<app_ref>/logs")
@login_required
def app_logs(app_ref: str) -> Reply:
    app = _find_app(app_ref)
    lines = store.read(db_session(), app.id, limit=RECENT_LOG_LINES)
    return _app_page("logs", app, lines=[store.format_line(line) for line in lines])
