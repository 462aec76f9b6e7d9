"""One add-on on an app: its status while provisioning, plan changes, removal, SSO, and for
Berth's own Postgres, Redis and Kafka the dashboard they have instead of SSO (`addon_dashboard`).

Every view finds the add-on the way the API's `/apps/{app}/addons/{addon}` routes do (the app
must be visible to the caller, the add-on owned by or attached to it), so another user's add-on
is a 404 page like a missing one. Changes commit and wake a worker, then redirect at once.
"""
from __future__ import annotations

from typing import Any

from flask import flash, get_flashed_messages, jsonify, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.broker import actions, attachments, finders, operations, provisioning
from berth.broker.models import AddOn, AddOnState, Attachment
from berth.jobs.wakeup import nudge_workers
from berth.broker.schemas import AddOnDestroySchema, AddOnUpdateSchema
from berth.errors import BerthError, InvalidParams, NotFound
from berth.httpapi.body import load
from berth.httpapi.context import current_account, db_session
from berth.platform import apps
from berth.platform.models import App, ConfigVar
from berth.web import addon_dashboard
from berth.web.dashboard import MASK
from berth.web.marketplace import listed_plans
from berth.web.pages import blueprint, login_required, render, settings
from berth.web.security_headers import allow_form_posts_off_site

Reply = Any
BUSY = (AddOnState.PROVISIONING, AddOnState.DEPROVISIONING)
blueprint.add_app_template_filter(addon_dashboard.size_text, "size")
blueprint.add_app_template_filter(addon_dashboard.duration_text, "duration")


def _find(session: Session, app_ref: str, addon_ref: str) -> tuple[App, AddOn]:
    """As the API's show_app_addon: NotFound (a 404 page) for anything the caller cannot see."""
    caller = current_account().id
    app = apps.get_app(session, caller, app_ref)
    return app, finders.get_app_addon(session, caller, app, addon_ref)


def _visible_attachments(session: Session, addon: AddOn) -> list[Attachment]:
    """Only attachments on apps the caller can see, as the attachments API lists them."""
    query = attachments.attachments_query(current_account().id).where(Attachment.addon_id == addon.id)
    return list(session.scalars(query.order_by(Attachment.created_at)))


def _credentials(session: Session, shown: list[Attachment]) -> dict[str, list[ConfigVar]]:
    """The config vars each attachment set (owned by it), by attachment id: one query."""
    found: dict[str, list[ConfigVar]] = {att.id: [] for att in shown}
    if found:
        query = select(ConfigVar).where(ConfigVar.owner.in_(found)).order_by(ConfigVar.name)
        for row in session.scalars(query):
            found[row.owner].append(row)  # type: ignore[index]
    return found


def _page(app_ref: str, addon_ref: str, status: int = 200, **context: Any) -> Reply:
    session = db_session()
    app, addon = _find(session, app_ref, addon_ref)
    visible = _visible_attachments(session, addon)
    shown = [(att, attachments.declared_var_names(addon, att.name)) for att in visible]
    first_party = addon_dashboard.is_first_party(addon.service)
    if first_party:  # the page is its dashboard: its credentials, masked, and the provider's report
        context.setdefault("credentials", _credentials(session, visible))
        context.setdefault("dashboard", addon_dashboard.load(session, settings(), addon))
    plans = listed_plans(addon.service)
    if addon.plan not in plans:
        plans = [addon.plan, *plans]  # a private plan it is on still shows as current
    notices = get_flashed_messages()
    context.setdefault("notice", notices[-1] if notices else None)
    return render("web/addons/addon.html", status, app=app, addon=addon, attachments=shown, plans=plans,
                  busy=addon.state in BUSY, first_party=first_party, mask=MASK,
                  reveal=request.args.get("reveal") if status == 200 else None,
                  sso=addon.state == AddOnState.PROVISIONED and addon_dashboard.has_sso_dashboard(addon),
                  **context)


def _commit_and_nudge() -> None:
    """What the API's `commit_and_wait` does first; a page then redirects instead of waiting."""
    db_session().commit()
    nudge_workers(settings().data_dir)


@blueprint.get("/dashboard/apps/<app_ref>/addons/<addon_ref>")
@login_required
def addon_page(app_ref: str, addon_ref: str) -> Reply:
    return _page(app_ref, addon_ref)


@blueprint.get("/dashboard/apps/<app_ref>/addons/<addon_ref>/status")
@login_required
def addon_status(app_ref: str, addon_ref: str) -> Reply:
    """Polled by provisioning.js; errors as JSON too, since a script reads them."""
    try:
        _app, addon = _find(db_session(), app_ref, addon_ref)
    except BerthError as error:
        return jsonify(error.to_dict()), error.status
    return jsonify({"state": addon.state, "failure_message": addon.failure_message})


def _error_again(app_ref: str, addon_ref: str, error: BerthError) -> Reply:
    db_session().rollback()  # nothing of a refused change stays
    return _page(app_ref, addon_ref, error.status, error=error.message)


@blueprint.post("/dashboard/apps/<app_ref>/addons/<addon_ref>/plan")
@login_required
def change_addon_plan(app_ref: str, addon_ref: str) -> Reply:
    session, account = db_session(), current_account()
    app, addon = _find(session, app_ref, addon_ref)
    try:
        params = load(AddOnUpdateSchema(), {"plan": (request.form.get("plan") or "").strip()})
        finders.require_owner_app_access(session, account.id, addon, known=app)
        provisioning.change_plan(session, account, addon, params["plan"])
    except BerthError as error:
        return _error_again(app_ref, addon_ref, error)
    changing = operations.open_operation(session, addon) is not None  # change_plan queued one
    target = url_for("web.addon_page", app_ref=app.name, addon_ref=addon.name)
    _commit_and_nudge()
    flash("The plan change has been requested; the provider applies it shortly." if changing
          else "The add-on is already on that plan.")
    return redirect(target, 303)


@blueprint.post("/dashboard/apps/<app_ref>/addons/<addon_ref>/remove")
@login_required
def remove_addon(app_ref: str, addon_ref: str) -> Reply:
    session, account = db_session(), current_account()
    app, addon = _find(session, app_ref, addon_ref)
    typed = (request.form.get("confirm") or "").strip()
    try:
        load(AddOnDestroySchema(), {})
        if typed != addon.name:
            raise InvalidParams(f"To remove this add-on, type its name {addon.name} exactly to confirm."
                                + (f" You typed {typed!r}." if typed else ""))
        finders.require_owner_app_access(session, account.id, addon, known=app)
        provisioning.destroy_addon(session, account, addon)
    except BerthError as error:
        return _error_again(app_ref, addon_ref, error)
    target = url_for("web.app_page", app_ref=app.name)
    _commit_and_nudge()
    return redirect(target, 303)


@blueprint.post("/dashboard/apps/<app_ref>/addons/<addon_ref>/open")
@login_required
def open_addon(app_ref: str, addon_ref: str) -> Reply:
    """The API's SSO form, as a page whose script (sso.js) posts it; without scripts, a button.
    An add-on without an SSO dashboard (Berth's own data services) has its page instead."""
    app, addon = _find(db_session(), app_ref, addon_ref)
    if addon.state == AddOnState.PROVISIONED and not addon_dashboard.has_sso_dashboard(addon):
        flash(f"{addon.service.human_name} has no separate dashboard: this page is {addon.name}'s dashboard.")
        return redirect(url_for("web.addon_page", app_ref=app.name, addon_ref=addon.name), 303)
    form = provisioning.sso_form(addon, current_account(), app)
    allow_form_posts_off_site()
    return render("web/addons/sso.html", app=app, addon=addon, form=form)


@blueprint.post("/dashboard/apps/<app_ref>/addons/<addon_ref>/backups")
@login_required
def capture_backup(app_ref: str, addon_ref: str) -> Reply:
    """`backups-capture` through the API's action path (pg_dump may take a while: the operator's
    provider timeout, not a page read's)."""
    session = db_session()
    app, addon = _find(session, app_ref, addon_ref)
    if addon.service.name != "postgresql" or not addon_dashboard.is_first_party(addon.service):
        raise NotFound(f"{addon.name} has no backups to capture.", resource="action")
    try:
        call = actions.prepare(addon, "backups-capture")
        target = url_for("web.addon_page", app_ref=app.name, addon_ref=addon.name)
        session.commit()  # hold no lock while the provider works: it may be in this very process
        answer = actions.call(addon_dashboard.provider_client(settings(), quick=False), call, {})
        message = actions.apply(session, call, answer)["message"]
    except BerthError as error:
        return _error_again(app_ref, addon_ref, error)
    flash(message or "Backup captured.")
    return redirect(target + "#backups", 303)
