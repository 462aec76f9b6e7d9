"""Provisioning as a recorded state machine: what requests write, and what workers apply.

States: provisioning -> provisioned -> deprovisioning -> deprovisioned, and failed (the
provider refused, or never finished). A request records the add-on and its operation in one
transaction; a worker calls the provider (outside any transaction) and applies the answer in
another. If anything dies in between, the operation is claimed again: calls are idempotent
on the add-on's uuid.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, joinedload

from berth.accounts import UUID_PATTERN, Account
from berth.broker import attachments, catalogue, operations, partner_auth
from berth.broker.models import AddOn, AddonService, Attachment, Operation, Plan
from berth.broker.naming import ADDON_NAME_PATTERN, generate_addon_name
from berth.broker.partner_api import sso
from berth.broker.partner_api.client import Outcome, ProviderAnswer, ProviderEndpoint
from berth.config import Settings
from berth.db import utcnow
from berth.errors import Conflict, Forbidden, InvalidParams, NotFound
from berth.platform import apps
from berth.platform.logs import drains, tokens
from berth.platform.models import App

log = logging.getLogger(__name__)
PROVISIONING, PROVISIONED = "provisioning", "provisioned"
DEPROVISIONING, DEPROVISIONED, FAILED = "deprovisioning", "deprovisioned", "failed"
ADDON_NOT_FOUND = "Couldn't find that add-on."
GENERIC_FAILURE = "The add-on provider could not be reached or gave an invalid answer. Please try again later."
MAX_PLAN_CHANGE_ATTEMPTS = 5
MAX_UNANSWERED_PROVISION_ATTEMPTS = 3  # provision calls that got no answer at all, before failing


# ---- finding add-ons ------------------------------------------------------------------------

def visible_addons_query(caller_id: str):  # type: ignore[no-untyped-def]
    """Add-ons whose owning app, or an app they are attached to, the caller can see."""
    attached = (select(Attachment.addon_id).join(App, App.id == Attachment.app_id)
                .where(apps.visible_to(caller_id)))
    owned = select(App.id).where(apps.visible_to(caller_id))
    return select(AddOn).where(or_(AddOn.app_id.in_(owned), AddOn.id.in_(attached)))


def listed_addons_query(caller_id: str):  # type: ignore[no-untyped-def]
    return visible_addons_query(caller_id).where(AddOn.state.in_((PROVISIONING, PROVISIONED,
                                                                  DEPROVISIONING)))


def addon_reference(ref: str) -> ColumnElement[bool]:
    """SQL condition: the add-on with the UUID `ref`, or named `ref`."""
    return AddOn.id == ref.lower() if UUID_PATTERN.match(ref) else AddOn.name == ref


def get_addon(session: Session, caller_id: str, ref: str) -> AddOn:
    """By uuid or global name. Destroyed add-ons are gone (404, which `--wait` waits for);
    failed ones stay readable, so whoever waited can see why."""
    addon = session.scalar(visible_addons_query(caller_id).where(addon_reference(ref)))
    if addon is None or addon.state == DEPROVISIONED:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    return addon


def get_app_addon(session: Session, caller_id: str, app: App, ref: str) -> AddOn:
    """An add-on owned by or attached to `app` (which the caller can see: found with get_app), by
    uuid, name or attachment name. Being on a visible app makes it visible: no wider search."""
    attachment = session.scalar(select(Attachment).where(Attachment.app_id == app.id,
                                                         Attachment.name == ref))
    if attachment is not None:
        addon: AddOn | None = attachment.addon
    else:
        on_app = or_(AddOn.app_id == app.id,
                     AddOn.id.in_(select(Attachment.addon_id).where(Attachment.app_id == app.id)))
        addon = session.scalar(select(AddOn).where(addon_reference(ref), on_app))
    if addon is None or addon.state == DEPROVISIONED:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    return addon


def require_owner_app_access(session: Session, caller_id: str, addon: AddOn, *,
                             known: App | None = None) -> App:
    """Changing or destroying an add-on is for those who can see the app that owns it (`known`:
    an app the caller was already found to see, saving the look-up when it is the owner)."""
    if addon.app_id is None:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    if known is not None and known.id == addon.app_id:
        return known
    return apps.get_app(session, caller_id, addon.app_id)


# ---- what requests write ---------------------------------------------------------------------

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
                                   AddOn.state.in_((PROVISIONING, PROVISIONED)))):
        raise InvalidParams(f"{app.name} already has a {service.name} add-on; this service allows "
                            "one per app.")
    addon = AddOn(name=name, service_id=service.id, plan_id=plan.id, app_id=app.id,
                  state=PROVISIONING, options=dict(config or {}), region=f"berth::{settings.region}")
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
    if addon.state != PROVISIONED:
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
    if addon.state in (DEPROVISIONING, DEPROVISIONED):
        return addon
    for attachment in list(addon.attachments):
        attachments.detach(session, attachment, caller)
    pending = operations.open_operation(session, addon)
    if addon.state == PROVISIONING and pending is not None and pending.kind == operations.PROVISION \
            and pending.state == operations.PENDING:
        # The provider was never called: nothing to undo there.
        operations.finish(pending, message="Cancelled before the provider was called.")
        addon.state = DEPROVISIONED
    elif addon.state == FAILED:
        addon.state = DEPROVISIONED  # its clean-up deprovision, if any, is already queued
    else:
        addon.state = DEPROVISIONING
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


# ---- what workers apply ------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """Everything a provider call needs, copied out of the database before the call."""

    operation_id: str
    kind: str
    endpoint: ProviderEndpoint
    addon_id: str
    addon_name: str
    plan: str
    region: str
    options: dict[str, str]
    resource_id: str
    oauth_grant: dict[str, str] | None
    log_input_token: str | None = None  # the worker makes it a log_input_url on the API's host
    log_drain_token: str | None = None


def endpoint_of(service: AddonService) -> ProviderEndpoint:
    return ProviderEndpoint(service=service.name, password=service.password, base_url=service.base_url,
                            config_vars=tuple(service.config_vars), requires=tuple(service.requires))


def lean_addon_load(addon: Any, *, with_attachments: bool) -> list[Any]:
    """Loader options for an add-on (`addon`: a joinedload path to it) read in one statement with
    its service, plan, app and, if asked, attachments: without the accounts that own the
    service and the apps (the broker's answers and workers never use them) and without the
    plan's service again (the add-on's, found by its key in the session)."""
    options = [addon.joinedload(AddOn.service).lazyload(AddonService.owner),
               addon.joinedload(AddOn.plan).lazyload(Plan.service),
               addon.joinedload(AddOn.app).lazyload(App.owner)]
    if with_attachments:
        attached = addon.joinedload(AddOn.attachments)
        options += [attached.lazyload(Attachment.addon), attached.joinedload(Attachment.app).lazyload(App.owner)]
    return options


def _worker_load(*, with_attachments: bool) -> list[Any]:
    """What a worker reads with an operation (applying an answer visits every attachment)."""
    return lean_addon_load(joinedload(Operation.addon), with_attachments=with_attachments)


def prepare_call(session: Session, operation_id: str) -> Call | None:
    operation = session.get(Operation, operation_id, options=_worker_load(with_attachments=False))
    if operation is None or operation.state != operations.RUNNING:
        return None
    addon = operation.addon
    plan = session.get(Plan, operation.target_plan_id) if operation.target_plan_id else addon.plan
    assert plan is not None
    call = Call(operation.id, operation.kind, endpoint_of(addon.service), addon.id, addon.name,
                plan.name, addon.region, dict(addon.options), addon.id, None)
    if operation.kind != operations.PROVISION:
        return call
    requires = addon.service.requires
    if "syslog_drain" in requires and addon.log_drain_token is None:
        addon.log_drain_token = drains.new_drain_token()  # kept: a retried call sends the same one
    owner = attachments.owner_attachment(addon) if "log_input" in requires else None  # loads attachments
    return replace(call, oauth_grant=partner_auth.mint_grant(session, addon),
                   log_input_token=tokens.owned_input_token(session, owner.id) if owner is not None else None,
                   log_drain_token=addon.log_drain_token if "syslog_drain" in requires else None)


def apply_answer(session: Session, settings: Settings, operation_id: str, answer: ProviderAnswer) -> None:
    operation = session.get(Operation, operation_id, options=_worker_load(with_attachments=True))
    if operation is None or operation.state != operations.RUNNING:
        return  # someone else finished it (a reclaimed lease): their answer stands
    addon = operation.addon
    if answer.outcome not in (Outcome.SUCCEEDED, Outcome.ACCEPTED):
        log.warning("%s %s: %s (%s) %s", operation.kind, addon.name, answer.outcome.value,
                    answer.status, answer.detail)
    handler = {operations.PROVISION: _apply_provision, operations.CHANGE_PLAN: _apply_plan_change,
               operations.DEPROVISION: _apply_deprovision}[operation.kind]
    handler(session, settings, operation, addon, answer)
    session.flush()


def _apply_provision(session: Session, settings: Settings, operation: Operation, addon: AddOn,
                     answer: ProviderAnswer) -> None:
    if addon.state != PROVISIONING:
        operations.finish(operation, message=f"Add-on is {addon.state}; answer not applied.")
        return
    if answer.outcome == Outcome.SUCCEEDED:
        addon.provider_id, addon.provision_message = answer.provider_id, answer.message
        addon.config = json.dumps(answer.config, sort_keys=True)
        addon.log_drain_url = answer.log_drain_url
        addon.state, addon.deadline_at = PROVISIONED, None
        for attachment in list(addon.attachments):
            attachments.go_live(session, attachment, None)
        operations.finish(operation, message=answer.message)
    elif answer.outcome == Outcome.ACCEPTED:
        addon.provider_id, addon.provision_message = answer.provider_id, answer.message
        addon.log_drain_url = answer.log_drain_url  # if it gave one already; used on completion
        addon.deadline_at = utcnow() + timedelta(seconds=settings.async_provision_timeout_seconds)
        operations.finish(operation, message=answer.message)
    elif answer.connection_error and operation.attempts < MAX_UNANSWERED_PROVISION_ATTEMPTS:
        # The provider was unreachable even after the client's quick retries (restarting?):
        # the call carries the uuid, so asking again later is safe; failing now is not needed.
        operations.retry_later(operation, settings.retry_base_seconds, answer.detail)
    else:
        refused = answer.outcome == Outcome.REFUSED
        fail_provision(session, addon, (answer.message if refused and answer.message else GENERIC_FAILURE),
                       mitigate=not refused)
        operations.finish(operation, message=addon.failure_message, detail=answer.detail, failed=True)


def fail_provision(session: Session, addon: AddOn, message: str, *, mitigate: bool) -> None:
    """Provisioning failed: nothing stays attached; and when the provider may hold something
    (a timeout, a bad answer), a deprovision makes sure it does not keep it."""
    for attachment in list(addon.attachments):
        attachments.detach(session, attachment, None)
    addon.state, addon.failure_message, addon.deadline_at = FAILED, message, None
    partner_auth.revoke(session, addon)
    if mitigate:
        operations.enqueue(session, addon, operations.DEPROVISION)


def _apply_plan_change(session: Session, settings: Settings, operation: Operation, addon: AddOn,
                       answer: ProviderAnswer) -> None:
    target = session.get(Plan, operation.target_plan_id)
    assert target is not None
    if addon.state != PROVISIONED:
        operations.finish(operation, message=f"Add-on is {addon.state}; plan change dropped.", failed=True)
    elif answer.outcome in (Outcome.SUCCEEDED, Outcome.ACCEPTED):
        addon.plan_id, addon.plan, addon.failure_message = target.id, target, None
        if answer.config:
            merged = {**attachments.addon_config(addon), **answer.config}
            addon.config = json.dumps(merged, sort_keys=True)
            attachments.release_config_everywhere(session, addon, None,
                                                  f"Update {addon.service.config_vars_prefix} by {addon.service.name}")
        operations.finish(operation, message=answer.message)
    elif answer.outcome == Outcome.REFUSED:
        _fail_plan_change(operation, addon, target, answer.message or "The provider refused the plan change.",
                          answer.detail)
    elif operation.attempts >= MAX_PLAN_CHANGE_ATTEMPTS:
        _fail_plan_change(operation, addon, target, "The provider could not be reached or gave an invalid "
                          "answer; try again later.", answer.detail)
    else:
        operations.retry_later(operation, settings.retry_base_seconds, answer.detail)


def _fail_plan_change(operation: Operation, addon: AddOn, target: Plan, reason: str, detail: str) -> None:
    """The add-on keeps its plan; the reason stays on it (`failure_message`, shown by the API and
    the add-on's page) for whoever asked and stopped waiting, until the next plan change."""
    message = f"Changing {addon.name} to {target.full_name} failed; it stays on {addon.plan.full_name}. {reason}"
    addon.failure_message = message[:1000]
    operations.finish(operation, message=reason, detail=detail, failed=True)


def _apply_deprovision(session: Session, settings: Settings, operation: Operation, addon: AddOn,
                       answer: ProviderAnswer) -> None:
    if answer.outcome in (Outcome.SUCCEEDED, Outcome.GONE, Outcome.ACCEPTED):
        if addon.state == DEPROVISIONING:
            addon.state = DEPROVISIONED
            partner_auth.revoke(session, addon)
        operations.finish(operation)
    else:  # keep trying: the partner must not keep a resource nobody pays for
        operations.retry_later(operation, settings.retry_base_seconds,
                               f"{answer.outcome.value} ({answer.status}): {answer.detail}")


def expire_async_provisions(session: Session) -> int:
    """Add-ons still `provisioning` past their deadline have failed."""
    overdue = session.scalars(select(AddOn).where(AddOn.state == PROVISIONING,
                                                  AddOn.deadline_at.is_not(None),
                                                  AddOn.deadline_at <= utcnow())).all()
    for addon in overdue:
        fail_provision(session, addon, "The provider did not finish provisioning in time.", mitigate=True)
    session.flush()
    return len(overdue)


def caller_may_attach(app: App, addon: AddOn) -> None:
    if addon.app_id != app.id and "attachable" not in addon.service.requires:
        raise Forbidden(f"{addon.service.name} add-ons cannot be shared with other apps.")


# ---- what partners do (partner endpoints) ----------------------------------------------------

def partner_addon(session: Session, partner_addon_id: str, ref: str) -> AddOn:
    """The add-on a partner token reaches; any other is out of its scope (403)."""
    addon = session.scalar(select(AddOn).where(addon_reference(ref)))
    if addon is None:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    if addon.id != partner_addon_id:
        raise Forbidden("This token is for another add-on.")
    return addon


def config_items(addon: AddOn) -> list[dict[str, str | None]]:
    return [{"name": name, "value": value}
            for name, value in sorted(attachments.addon_config(addon).items())]


def update_config_from_partner(session: Session, addon: AddOn,
                               items: list[dict[str, str | None]]) -> AddOn:
    """Merge the partner's values (null deletes). Provisioned: a release on every attached
    app; still provisioning: staged until the partner says it is done."""
    declared = set(addon.service.config_vars)
    unknown = sorted(str(item["name"]) for item in items if item["name"] not in declared)
    if unknown:
        raise InvalidParams(f"{', '.join(unknown)} not declared in the manifest's config_vars.")
    merged = attachments.addon_config(addon)
    for item in items:
        if item["value"] is None:
            merged.pop(str(item["name"]), None)
        else:
            merged[str(item["name"])] = str(item["value"])
    addon.config = json.dumps(merged, sort_keys=True)
    if addon.state == PROVISIONED:
        attachments.release_config_everywhere(session, addon, None,
                                              f"Update {addon.service.config_vars_prefix} by {addon.service.name}")
    session.flush()
    return addon


def complete_provision(session: Session, addon: AddOn) -> AddOn:
    if addon.state == PROVISIONING:
        addon.state, addon.deadline_at = PROVISIONED, None
        for attachment in list(addon.attachments):
            attachments.go_live(session, attachment, None)
        session.flush()
    elif addon.state != PROVISIONED:
        raise Conflict(f"{addon.name} is {addon.state}; it can no longer be provisioned.")
    return addon


def complete_deprovision(session: Session, addon: AddOn) -> AddOn:
    """The partner is done with (or gives up on) the resource."""
    if addon.state == PROVISIONING:
        fail_provision(session, addon, "The provider could not create the add-on.", mitigate=False)
    elif addon.state in (PROVISIONED, DEPROVISIONING):
        for attachment in list(addon.attachments):
            attachments.detach(session, attachment, None)
        addon.state = DEPROVISIONED
        partner_auth.revoke(session, addon)
    session.flush()
    return addon


def partner_may_see_app(session: Session, partner_addon_id: str, app: App) -> bool:
    return session.scalar(select(Attachment.id).where(Attachment.addon_id == partner_addon_id,
                                                      Attachment.app_id == app.id)) is not None


def sso_form(addon: AddOn, user: Account, context_app: App, *, origin: str = "") -> dict[str, Any]:
    """What the browser POSTs to the partner's dashboard (spec §4.4), stamped now. A first-party
    dashboard is a path on Berth itself: `origin` (Berth's URL) makes it absolute for clients
    other than Berth's own pages."""
    service = addon.service
    if addon.state != PROVISIONED or not service.sso_url or not service.sso_salt:
        raise Conflict(f"{addon.name} has no dashboard to open"
                       + ("." if addon.state == PROVISIONED else f" while it is {addon.state}."))
    params = sso.sso_params(addon.id, service.sso_salt, user_id=user.id, email=user.email,
                            app=addon.app.name if addon.app else context_app.name,
                            context_app=context_app.name)
    action = origin.rstrip("/") + service.sso_url if service.sso_url.startswith("/") else service.sso_url
    return {"method": "post", "action": action, "params": params}
