"""/apps/{app}/addons, /addons, /actions/addons/resolve."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

from flask import current_app, request
from sqlalchemy import Row, or_, select
from sqlalchemy.orm import Load

from berth.broker import actions, finders, outcomes, partner_callbacks, provisioning
from berth.broker.api import blueprint
from berth.broker.models import AddOn, Attachment
from berth.jobs.wakeup import Waiter, nudge_workers
from berth.broker.partner_api.client import ProviderClient
from berth.broker.schemas import (
    AddOnActionResultSchema,
    AddOnActionSchema,
    AddOnCreateSchema,
    AddOnDestroySchema,
    AddOnSchema,
    AddOnUpdateSchema,
    ResolveSchema,
    SsoSchema,
)
from berth.config import Settings
from berth.errors import NotFound
from berth.httpapi.body import load
from berth.httpapi.context import (
    current_account,
    current_account_id,
    current_partner_addon_id,
    database,
    db_session,
    partner_access,
)
from berth.httpapi.openapi import describe
from berth.httpapi.pagination import paginate
from berth.platform import apps

Reply = Any
ADDON_RANGE_FIELDS = {"id": AddOn.id, "name": AddOn.name, "created_at": AddOn.created_at,
                      "updated_at": AddOn.updated_at}
POLL_SECONDS = 0.05
# Made once: building a schema deep-copies its fields, which cost a provision more than its SQL.
# Loading and dumping keep no state on the instance, so requests share them.
_CREATE_SCHEMA, _ADDON_SCHEMA = AddOnCreateSchema(), AddOnSchema()


def _settings() -> Settings:
    return current_app.config["BERTH_SETTINGS"]


def commit_and_wait(addon_id: str, operation_id: str | None = None, *,
                    seconds: float | None = None) -> Row[Any] | None:
    """Record the change, wake a worker, and give a quick provider a moment to answer (the
    operation `operation_id`; None: any the add-on has): the add-on's last `look` (None when
    there is no wait). `seconds`: how long at most (the settings' provision wait by default).

    The one place a view commits before returning: the worker can only see the operation
    once it is committed, and the answer should show its outcome when it is quick. The
    worker signals the waiter when it commits an answer; the looks are in autocommit, so
    they never hold SQLite's write lock against the worker.
    """
    settings = _settings()
    seconds = settings.provision_wait_seconds if seconds is None else seconds
    waiting = seconds > 0
    with _waiter(settings.data_dir, addon_id, waiting) as waiter:
        db_session().commit()
        nudge_workers(settings.data_dir)
        if not waiting:
            return None
        deadline = time.monotonic() + seconds
        seen = None
        with database().session(write=False) as session:
            # No look before the first wait: no worker can have answered an operation committed
            # a moment ago, and each look is a round trip.
            while (left := deadline - time.monotonic()) > 0:
                if waiter is None:
                    time.sleep(min(left, POLL_SECONDS))
                else:  # the signal, or a poll now and then in case it went missing
                    waiter.wait(min(left, POLL_SECONDS))
                seen = provisioning.look(session, addon_id, operation_id)
                if seen is None or not seen.busy:
                    break
        return seen


def _answer(addon_id: str) -> dict[str, Any]:
    """The add-on as it is now, with its attachments (the answer names the owner's)."""
    with database().session(write=False) as session:
        addon = session.get(AddOn, addon_id, options=outcomes.lean_addon_load(Load(AddOn), with_attachments=True))
        assert addon is not None
        return AddOnSchema().dump(addon)


@contextlib.contextmanager
def _waiter(data_dir: Path, addon_id: str, wanted: bool) -> Iterator[Waiter | None]:
    if not wanted:
        yield None
        return
    try:
        waiter = Waiter(data_dir, addon_id)
    except OSError:  # no socket here (a path too long, a read-only dir): polling still works
        yield None
        return
    with waiter:
        yield waiter


@blueprint.post("/apps/<app_ref>/addons")
@describe(summary="Provision an add-on for an app", request=AddOnCreateSchema, response=AddOnSchema,
          status=201)
def create_addon(app_ref: str) -> Reply:
    params = load(_CREATE_SCHEMA)
    attachment_name = (params["attachment"] or {}).get("name")
    # The caller's id is all a provision needs of the account: no read of it.
    addon = provisioning.create_addon(db_session(), _settings(), current_account_id(), app_ref, params["plan"],
                                      name=params["name"], attachment_name=attachment_name,
                                      config=params["config"], confirm=params["confirm"])
    seen = commit_and_wait(addon.id, addon.operation_id)
    if seen is not None:
        provisioning.refresh(addon, seen)
    return _ADDON_SCHEMA.dump(addon), 201


def _list(query: Any) -> Reply:
    page = paginate(db_session(), query, ADDON_RANGE_FIELDS, request.headers.get("Range"),
                    tie_breaker=AddOn.id)
    return page.respond(AddOnSchema(many=True).dump(page.rows))


@blueprint.get("/addons")
@describe(summary="Add-ons on apps the caller can see", response=AddOnSchema, many=True)
def list_addons() -> Reply:
    return _list(finders.listed_addons_query(current_account_id()))


@blueprint.get("/apps/<app_ref>/addons")
@describe(summary="Add-ons owned by or attached to an app", response=AddOnSchema, many=True)
def list_app_addons(app_ref: str) -> Reply:
    app = apps.get_app(db_session(), current_account_id(), app_ref)
    attached = select(Attachment.addon_id).where(Attachment.app_id == app.id)
    query = finders.listed_addons_query(current_account_id()).where(
        or_(AddOn.app_id == app.id, AddOn.id.in_(attached)))
    return _list(query)


@blueprint.get("/addons/<addon_ref>")
@partner_access
@describe(summary="One add-on by id or name (its partner may read it too)", response=AddOnSchema)
def show_addon(addon_ref: str) -> Reply:
    partner = current_partner_addon_id()
    if partner is not None:
        return AddOnSchema().dump(partner_callbacks.partner_addon(db_session(), partner, addon_ref))
    return AddOnSchema().dump(finders.get_addon(db_session(), current_account_id(), addon_ref))


@blueprint.get("/apps/<app_ref>/addons/<addon_ref>")
@describe(summary="One add-on of an app, by id, name or attachment name", response=AddOnSchema)
def show_app_addon(app_ref: str, addon_ref: str) -> Reply:
    session, caller = db_session(), current_account_id()
    app = apps.get_app(session, caller, app_ref)
    return AddOnSchema().dump(finders.get_app_addon(session, caller, app, addon_ref))


@blueprint.patch("/apps/<app_ref>/addons/<addon_ref>")
@describe(summary="Change an add-on's plan (or rename it)", request=AddOnUpdateSchema,
          response=AddOnSchema)
def update_addon(app_ref: str, addon_ref: str) -> Reply:
    params = load(AddOnUpdateSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    addon = finders.get_app_addon(session, account.id, app, addon_ref)
    finders.require_owner_app_access(session, account.id, addon, known=app)
    if "name" in params:
        provisioning.rename_addon(session, addon, params["name"])
    if "plan" in params:
        operation_id = provisioning.change_plan(session, account, addon, params["plan"])
        commit_and_wait(addon.id, operation_id)
        answer = _answer(addon.id)
        if operation_id is not None:
            with database().session(write=False) as reading:  # committed: read without a lock
                refusal = provisioning.plan_change_refusal(reading, operation_id)
            if refusal is not None:  # the provider said no while we waited: not 200 with the old plan
                raise refusal
        return answer
    return AddOnSchema().dump(addon)


@blueprint.delete("/apps/<app_ref>/addons/<addon_ref>")
@describe(summary="Destroy an add-on: detached at once, deprovisioned in the background",
          request=AddOnDestroySchema, response=AddOnSchema)
def destroy_addon(app_ref: str, addon_ref: str) -> Reply:
    load(AddOnDestroySchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    addon = finders.get_app_addon(session, account.id, app, addon_ref)
    finders.require_owner_app_access(session, account.id, addon, known=app)
    provisioning.destroy_addon(session, account, addon)
    commit_and_wait(addon.id)
    return _answer(addon.id)


@blueprint.post("/actions/addons/resolve")
@describe(summary="Find add-ons by name, attachment name or app::name", request=ResolveSchema,
          response=AddOnSchema, many=True)
def resolve_addons() -> Reply:
    params = load(ResolveSchema())
    session, caller = db_session(), current_account_id()
    ref, app_ref = params["addon"], params["app"]
    if "::" in ref:
        app_ref, ref = ref.split("::", 1)
    try:
        if app_ref:
            addon = finders.get_app_addon(session, caller, apps.get_app(session, caller, app_ref), ref)
        else:
            addon = finders.get_addon(session, caller, ref)
    except NotFound:
        raise NotFound(f"Couldn't find that add-on: {ref}.", resource="add_on") from None
    if params["addon_service"] and addon.service.name != params["addon_service"]:
        raise NotFound(f"Couldn't find that add-on: {ref}.", resource="add_on")
    return AddOnSchema(many=True).dump([addon])


def provider_client() -> ProviderClient:
    """The app's one pooled client for add-on actions (like the worker's): made with this app's
    settings, so its own URL and address policy are never another app's in the same process."""
    client = current_app.extensions.get("berth.action_client")
    if client is None:
        client = current_app.extensions.setdefault("berth.action_client", ProviderClient.for_settings(_settings()))
    return client


@blueprint.post("/apps/<app_ref>/addons/<addon_ref>/actions/<name>")
@describe(summary="Run one of the add-on's actions (rotate credentials, capture a backup, create a topic)",
          request=AddOnActionSchema, response=AddOnActionResultSchema)
def run_addon_action(app_ref: str, addon_ref: str, name: str) -> Reply:
    params = load(AddOnActionSchema())["params"] or {}
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    addon = finders.get_app_addon(session, account.id, app, addon_ref)
    call = actions.prepare(addon, name)
    session.commit()  # hold no lock while the provider works: it may be in this very process
    answer = actions.call(provider_client(), call, params)
    return AddOnActionResultSchema().dump(actions.apply(session, call, answer))


@blueprint.get("/apps/<app_ref>/addons/<addon_ref>/sso")
@describe(summary="Single sign-on into the add-on's dashboard: the form to POST", response=SsoSchema)
def addon_sso(app_ref: str, addon_ref: str) -> Reply:
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    addon = finders.get_app_addon(session, account.id, app, addon_ref)
    return SsoSchema().dump(provisioning.sso_form(addon, account, app,
                                                          origin=_settings().api_url))


@blueprint.get("/addons/<addon_ref>/sso")
@describe(summary="Single sign-on into the add-on's dashboard, from its owning app", response=SsoSchema)
def addon_sso_by_owner(addon_ref: str) -> Reply:
    session, account = db_session(), current_account()
    addon = finders.get_addon(session, account.id, addon_ref)
    app = finders.require_owner_app_access(session, account.id, addon)
    return SsoSchema().dump(provisioning.sso_form(addon, account, app,
                                                          origin=_settings().api_url))
