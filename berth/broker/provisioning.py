"""Provisioning, the request side: what a user's request records for a worker to carry out.

The add-on's state machine (`AddOnState`) is recorded: a request writes the add-on and its
operation in one transaction; a worker calls the provider outside any transaction and applies the
answer in another (`outcomes`). If anything dies in between, the operation is claimed again:
calls are idempotent on the add-on's uuid.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.broker import attachments, catalogue, operations
from berth.broker.models import AddOn, AddOnState, AddonService, Attachment, Operation, Plan
from berth.broker.naming import ADDON_NAME_PATTERN, generate_addon_name
from berth.broker.partner_api import sso
from berth.config import Settings
from berth.errors import Conflict, InvalidParams, NotFound
from berth.platform.models import App


def _resolve_plan(session: Session, plan_ref: str) -> tuple[Plan, AddonService]:
    """`service:plan`, a plan uuid, or a bare service name meaning its default plan; with its
    service (found first for a bare name: loading it again through the plan costs a query)."""
    if ":" not in plan_ref and not UUID_PATTERN.match(plan_ref):
        service = catalogue.find_service(session, plan_ref)
        if service is None or service.default_plan is None:
            raise NotFound(f"Couldn't find either the add-on service or the add-on plan {plan_ref!r}.",
                           resource="plan")
        return service.default_plan, service
    try:
        plan = catalogue.get_plan(session, plan_ref)
    except NotFound:
        raise NotFound(f"Couldn't find either the add-on service or the add-on plan {plan_ref!r}.",
                       resource="plan") from None
    return plan, plan.service


def _refuse_deprecated(plan: Plan) -> None:
    """A deprecated plan keeps its add-ons but takes no new ones (the partner retired it)."""
    if plan.state == "deprecated":
        raise InvalidParams(f"The plan {plan.full_name} is deprecated and takes no new add-ons; "
                            "choose another plan.")


def create_addon(session: Session, settings: Settings, caller: Account, app: App, plan_ref: str, *,
                 name: str | None = None, attachment_name: str | None = None,
                 config: dict[str, str] | None = None, confirm: str | None = None) -> AddOn:
    plan, service = _resolve_plan(session, plan_ref)
    _refuse_deprecated(plan)
    if service.state == "shutdown":
        raise InvalidParams(f"{service.name} is no longer available.")
    if "*" not in service.regions and settings.region not in service.regions:
        raise InvalidParams(f"{service.name} is not available in region {settings.region}.")
    if name is not None:
        if not ADDON_NAME_PATTERN.match(name):
            raise InvalidParams("Add-on names start with a letter and contain letters, digits, "
                                "dashes and underscores (2 to 100).")
        if session.scalar(select(AddOn.id).where(AddOn.name == name)):
            raise InvalidParams(f"The add-on name {name} is already taken.")
    else:
        name = next(n for n in (generate_addon_name(service.name) for _ in range(20))
                    if not session.scalar(select(AddOn.id).where(AddOn.name == n)))
    if "many_per_app" not in service.requires and session.scalar(
            select(AddOn.id).where(AddOn.app_id == app.id, AddOn.service_id == service.id,
                                   AddOn.state.in_((AddOnState.PROVISIONING, AddOnState.PROVISIONED)))):
        raise InvalidParams(f"{app.name} already has a {service.name} add-on; this service allows "
                            "one per app.")
    addon = AddOn(name=name, service_id=service.id, plan_id=plan.id, app_id=app.id,
                  state=AddOnState.PROVISIONING, options=dict(config or {}), region=f"berth::{settings.region}")
    addon.service, addon.plan = service, plan
    session.add(addon)
    session.flush()
    # The attachment reserves its name and vars now; they are filled once provisioned.
    attachments.create_attachment(session, app, addon, name=attachment_name, confirm=confirm, user=caller)
    operations.enqueue(session, addon, operations.PROVISION)
    return addon


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


def change_plan(session: Session, caller: Account, addon: AddOn, plan_ref: str) -> Operation | None:
    """Queue a plan change; None when the add-on is on that plan already. What became of it:
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
        operations.finish(pending, message="Cancelled before the provider was called.")
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
