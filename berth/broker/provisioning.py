"""Provisioning, the request side: what a user's request records for a worker to carry out.

The add-on's state machine (`AddOnState`) is recorded: a request writes the add-on and its
operation in one transaction; a worker calls the provider outside any transaction and applies the
answer in another (`outcomes`). If anything dies in between, the operation is claimed again:
calls are idempotent on the add-on's uuid.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Row, String, bindparam, exists, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.broker import attachments, catalogue, operations, provision_context
from berth.broker.addon_records import AppRef, NewAddOn, PlanFacts, ServiceFacts
from berth.broker.models import AddOn, AddOnState, AddonService, Attachment, Operation, Plan
from berth.broker.naming import ADDON_NAME_PATTERN, generate_addon_name
from berth.broker.partner_api import sso
from berth.config import Settings
from berth.db import PreparedStatement, new_id, utcnow
from berth.errors import Conflict, InvalidParams, NotFound
from berth.jobs import queue
from berth.platform.apps import APP_NOT_FOUND
from berth.platform.models import App


def _refuse_deprecated(plan: Plan | PlanFacts) -> None:
    """A deprecated plan keeps its add-ons but takes no new ones (the partner retired it)."""
    if plan.state == "deprecated":
        raise InvalidParams(f"The plan {plan.full_name} is deprecated and takes no new add-ons; "
                            "choose another plan.")


_addons = AddOn.__table__


def _insert_addon_statement(insert_for: Any) -> PreparedStatement:
    """A name taken meanwhile writes nothing (no failed transaction): the caller picks again or refuses."""
    now = bindparam("now", type_=_addons.c.created_at.type)
    return PreparedStatement(insert_for(_addons).values(
        id=bindparam("id"), name=bindparam("name"), service_id=bindparam("service_id"),
        plan_id=bindparam("plan_id"), app_id=bindparam("app_id"), state=bindparam("state"),
        options=bindparam("options"), region=bindparam("region"), config=bindparam("config"),
        created_at=now, updated_at=now)
        .on_conflict_do_nothing().returning(_addons.c.id))


_INSERT_ADDON = {"sqlite": _insert_addon_statement(sqlite_insert),
                 "postgresql": _insert_addon_statement(pg_insert)}
GENERATED_NAME_ATTEMPTS = 20


def _write_addon(session: Session, addon: NewAddOn, options: dict[str, str], region: str,
                 generate_name: bool) -> None:
    """Insert the add-on; a generated name found taken is drawn again, a chosen one refused."""
    statement = _INSERT_ADDON[session.get_bind().dialect.name]
    for _attempt in range(GENERATED_NAME_ATTEMPTS if generate_name else 1):
        if generate_name:
            addon.name = generate_addon_name(addon.service.name)
        if statement.run_in(session, {
                "id": addon.id, "name": addon.name, "service_id": addon.service.id, "plan_id": addon.plan.id,
                "app_id": addon.app.id, "state": addon.state, "options": options, "region": region,
                "config": addon.config, "now": addon.created_at}):
            return
    if generate_name:
        raise InvalidParams("No free add-on name was found; choose one (--name).")
    raise InvalidParams(f"The add-on name {addon.name} is already taken.")


def create_addon(session: Session, settings: Settings, caller_id: str, app_ref: str, plan_ref: str, *,
                 name: str | None = None, attachment_name: str | None = None,
                 config: dict[str, str] | None = None, confirm: str | None = None) -> NewAddOn:
    """Record a new add-on of `plan_ref` on the app, its attachment there and its provision
    operation, in the caller's transaction: one read, then three inserts."""
    context = provision_context.read(session, caller_id, app_ref, plan_ref, name)
    if context is None:
        raise NotFound(APP_NOT_FOUND, resource="app")
    service, plan, app = context.service, context.plan, context.target.app
    if service is None or plan is None:
        raise NotFound(f"Couldn't find either the add-on service or the add-on plan {plan_ref!r}.",
                       resource="plan")
    _refuse_deprecated(plan)
    if service.state == "shutdown":
        raise InvalidParams(f"{service.name} is no longer available.")
    if "*" not in service.regions and settings.region not in service.regions:
        raise InvalidParams(f"{service.name} is not available in region {settings.region}.")
    if name is not None:
        if not ADDON_NAME_PATTERN.match(name):
            raise InvalidParams("Add-on names start with a letter and contain letters, digits, "
                                "dashes and underscores (2 to 100).")
        if context.name_taken:
            raise InvalidParams(f"The add-on name {name} is already taken.")
    if "many_per_app" not in service.requires and context.service_on_app:
        raise InvalidParams(f"{app.name} already has a {service.name} add-on; this service allows "
                            "one per app.")
    now = utcnow()
    addon = NewAddOn(id=new_id(), name=name or "", app=app, service=service, plan=plan,
                     state=AddOnState.PROVISIONING, created_at=now, updated_at=now)
    _write_addon(session, addon, dict(config or {}), f"berth::{settings.region}", generate_name=name is None)
    # The attachment reserves its name and vars now; they are filled once provisioned.
    addon.attachments.append(attachments.reserve_attachment(
        session, context.target, addon, name=attachment_name, confirm=confirm))
    addon.operation_id = operations.enqueue(session, addon, operations.PROVISION)
    return addon


def create_unattached_addon(session: Session, settings: Settings, app: AppRef, service: AddonService, plan: Plan,
                            options: dict[str, str]) -> NewAddOn:
    """An add-on owned by `app` but attached nowhere (its credentials go out another way, as an
    Open Service Broker binding), with its provision operation: several of one service may
    share the app, since none of them sets the app's config vars."""
    _refuse_deprecated(plan)
    if service.state == "shutdown":
        raise InvalidParams(f"{service.name} is no longer available.")
    if "*" not in service.regions and settings.region not in service.regions:
        raise InvalidParams(f"{service.name} is not available in region {settings.region}.")
    now = utcnow()
    addon = NewAddOn(id=new_id(), name="", app=app, service=_service_facts(service), plan=_plan_facts(plan),
                     state=AddOnState.PROVISIONING, created_at=now, updated_at=now)
    _write_addon(session, addon, dict(options), f"berth::{settings.region}", generate_name=True)
    addon.operation_id = operations.enqueue(session, addon, operations.PROVISION)
    return addon


def _service_facts(service: AddonService) -> ServiceFacts:
    return ServiceFacts(service.id, service.name, service.human_name, service.state, list(service.regions),
                        list(service.requires), service.config_vars_prefix, list(service.config_vars))


def _plan_facts(plan: Plan) -> PlanFacts:
    return PlanFacts(plan.id, plan.name, plan.service.name, plan.state, plan.cents, plan.unit, plan.contract,
                     plan.metered)


_LOOK = (select(AddOn.state, AddOn.provider_id, AddOn.provision_message, AddOn.failure_message,
                AddOn.config, AddOn.updated_at,
                exists().where(Operation.addon_id == AddOn.id,
                               Operation.state.in_((operations.PENDING, operations.RUNNING)),
                               or_(bindparam("operation_id", type_=String()).is_(None),
                                   Operation.id == bindparam("operation_id", type_=String()))).label("busy"),
                # A failed provision is detached: its answer names no vars.
                select(Attachment.id).where(Attachment.addon_id == AddOn.id, Attachment.app_id == AddOn.app_id)
                .limit(1).scalar_subquery().label("owner_attachment_id"))
         .where(AddOn.id == bindparam("addon_id")))


def look(session: Session, addon_id: str, operation_id: str | None = None) -> Row[Any] | None:
    """An add-on's state and whether its operation `operation_id` (None: any) is still open, in
    one statement: read together, a worker committing in between cannot pair a closed operation
    with an old state. (A failed provision queues a clean-up deprovision: not what its request waits for.)"""
    return session.execute(_LOOK, {"addon_id": addon_id, "operation_id": operation_id}).first()


def refresh(addon: NewAddOn, seen: Row[Any]) -> None:
    """What a worker may have changed since the add-on was written, from a `look`."""
    addon.state, addon.provider_id = seen.state, seen.provider_id
    addon.provision_message, addon.failure_message = seen.provision_message, seen.failure_message
    addon.config, addon.updated_at = seen.config, seen.updated_at
    addon.attachments = [att for att in addon.attachments if att.id == seen.owner_attachment_id]


def rename_addon(session: Session, addon: AddOn, name: str) -> AddOn:
    if name == addon.name:
        return addon
    if not ADDON_NAME_PATTERN.match(name):
        raise InvalidParams("Add-on names start with a letter and contain letters, digits, "
                            "dashes and underscores (2 to 100).")
    if session.scalar(select(AddOn.id).where(AddOn.name == name)):
        raise InvalidParams(f"The add-on name {name} is already taken.")
    addon.name = name
    session.flush()
    return addon


def change_plan(session: Session, caller: Account, addon: AddOn, plan_ref: str) -> str | None:
    """Queue a plan change (its operation's id); None when the add-on is on that plan already. What became of it:
    `plan_change_refusal` once the worker answered, or the add-on's failure_message later."""
    if addon.state != AddOnState.PROVISIONED:
        raise Conflict(f"{addon.name} is {addon.state}; its plan can change once it is provisioned.")
    ref = plan_ref if ":" in plan_ref or UUID_PATTERN.match(plan_ref) else f"{addon.service.name}:{plan_ref}"
    try:
        plan = catalogue.get_plan(session, ref)
    except NotFound:
        raise InvalidParams(f"Couldn't find either the add-on service or the add-on plan {plan_ref!r}.") from None
    if plan.service_id != addon.service_id:
        raise InvalidParams(f"{plan.full_name} is not a plan of {addon.service.name}.")
    if plan.id == addon.plan_id:
        return None
    _refuse_deprecated(plan)
    if operations.open_operation(session, addon) is not None:
        raise Conflict(f"{addon.name} is busy with another change; try again shortly.")
    addon.failure_message = None  # a new attempt: the last one's failure is history
    return operations.enqueue(session, addon, operations.CHANGE_PLAN, target_plan_id=plan.id)


def plan_change_refusal(session: Session, operation_id: str) -> InvalidParams | None:
    """The error to answer with when the worker has already failed this plan change (the
    provider refused it, or it could not be made): the add-on keeps its plan."""
    operation = session.get(Operation, operation_id, populate_existing=True)
    if operation is None or operation.state != operations.FAILED:
        return None
    return InvalidParams(operation.message or "The provider refused the plan change; the add-on keeps its plan.")


def destroy_addon(session: Session, caller: Account | None, addon: AddOn) -> AddOn:
    """Detach everywhere at once (a release per app), then deprovision in the background."""
    if addon.state in (AddOnState.DEPROVISIONING, AddOnState.DEPROVISIONED):
        return addon
    for attachment in list(addon.attachments):
        attachments.detach(session, attachment, caller)
    pending = operations.open_operation(session, addon)
    if addon.state == AddOnState.PROVISIONING and pending is not None and pending.kind == operations.PROVISION \
            and pending.state == operations.PENDING:
        # The provider was never called: nothing to undo there.
        queue.finish(pending, message="Cancelled before the provider was called.")
        addon.state = AddOnState.DEPROVISIONED
    elif addon.state == AddOnState.FAILED:
        addon.state = AddOnState.DEPROVISIONED  # its clean-up deprovision, if any, is already queued
    else:
        addon.state = AddOnState.DEPROVISIONING
        operations.enqueue(session, addon, operations.DEPROVISION)
    session.flush()
    return addon


def on_app_destroying(session: Session, app: App) -> None:
    """Hook: the app's own add-ons are destroyed; its attachments of others' add-ons go."""
    for addon in session.scalars(select(AddOn).where(AddOn.app_id == app.id)).all():
        destroy_addon(session, None, addon)
    for attachment in session.scalars(select(Attachment).where(Attachment.app_id == app.id)).all():
        session.delete(attachment)
    session.flush()


def sso_form(addon: AddOn, user: Account, context_app: App, *, origin: str = "") -> dict[str, Any]:
    """What the browser POSTs to the partner's dashboard (spec §4.4), stamped now. A first-party
    dashboard is a path on Berth itself: `origin` (Berth's URL) makes it absolute for clients
    other than Berth's own pages."""
    service = addon.service
    if addon.state != AddOnState.PROVISIONED or not service.sso_url or not service.sso_salt:
        raise Conflict(f"{addon.name} has no dashboard to open"
                       + ("." if addon.state == AddOnState.PROVISIONED else f" while it is {addon.state}."))
    params = sso.sso_params(addon.id, service.sso_salt, user_id=user.id, email=user.email,
                            app=addon.app.name if addon.app else context_app.name,
                            context_app=context_app.name)
    action = origin.rstrip("/") + service.sso_url if service.sso_url.startswith("/") else service.sso_url
    return {"method": "post", "action": action, "params": params}
