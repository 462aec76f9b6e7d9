"""OSB service instances: an instance IS an add-on (owned by an app per platform context, in the
client's owner's account), an OSB operation IS the add-on's broker operation (the worker runs it).
The `OsbInstance` row only keeps the platform's id and request, to answer replays (§8 tables)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, lazyload

from berth.broker import operations, provisioning
from berth.broker.addon_records import AppRef
from berth.broker.models import AddOn, AddOnState, AddonService, Operation, Plan
from berth.broker.osb import catalog, protocol
from berth.broker.osb.models import OsbBinding, OsbClient, OsbInstance
from berth.broker.osb.protocol import OsbError, concurrency_error
from berth.broker.osb.schemas import check_parameters
from berth.config import Settings
from berth.db import utcnow
from berth.errors import BerthError
from berth.platform import apps
from berth.platform.models import App

PROVISION, UPDATE, DEPROVISION = "provision", "update", "deprovision"
PROVISIONING, READY, UPDATING, DEPROVISIONING, FAILED, DELETED = (
    "provisioning", "ready", "updating", "deprovisioning", "failed", "deleted")
IN_PROGRESS, SUCCEEDED, FAILED_STATE = "in progress", "succeeded", "failed"


@dataclass
class Outcome:
    """What a mutation answers; `wait_on`: the add-on (and operation) the request waits for after
    committing, `wait_seconds` at most, before `settle` gives the final answer. `asynchronous`: the
    platform accepts an operation (its 202 is the answer when the work is not done by then)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    wait_on: tuple[str, str | None] | None = None
    wait_seconds: float = 0.0
    asynchronous: bool = False
    looked: Any = None  # the add-on's last look after the wait (`provisioning.look`), if there was one


def _waiting(settings: Settings, accepted: Outcome, sync: bool, addon_id: str, operation_id: str | None,
             final_status: int) -> Outcome:
    """A sync-capable plan waits for the worker: without `accepts_incomplete` as long as platforms
    allow (then `final_status`), with it as briefly as the add-on API does (a quick 201/200 instead
    of a 202 to poll); an async-only plan answers the 202 at once."""
    if not sync:
        return accepted
    if accepted.status != 202:
        return Outcome(final_status, accepted.body, wait_on=(addon_id, operation_id),
                       wait_seconds=settings.osb_sync_wait_seconds)
    return replace(accepted, wait_on=(addon_id, operation_id), wait_seconds=settings.provision_wait_seconds,
                   asynchronous=True)


def fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# An instance with its add-on and the add-on's app (for the dashboard url); the add-on's service,
# plan and their owners' accounts load when a branch needs them (a poll or a replay does not).
_LEAN_ADDON = joinedload(OsbInstance.addon).options(lazyload(AddOn.service), lazyload(AddOn.plan),
                                                    joinedload(AddOn.app).lazyload("*"))
# The hot path's statements, built once (building one costs more CPU than running it on SQLite).
_INSTANCE = select(OsbInstance).where(OsbInstance.id == bindparam("instance_id")).options(_LEAN_ADDON)
_INSTANCE_LOCKED = _INSTANCE.with_for_update(of=OsbInstance)  # one mutation at a time per instance
_OFFERED_PLAN = (select(Plan).where(Plan.id == bindparam("plan_id"), Plan.service_id == bindparam("service_id"),
                                    Plan.state.in_(catalog.OFFERED_PLAN_STATES))
                 .options(joinedload(Plan.service).lazyload("*")))
_APP_BY_NAME = select(App.id, App.owner_id).where(App.name == bindparam("name"))


def _locked(session: Session, instance_id: str) -> OsbInstance | None:
    locking = session.get_bind().dialect.name == "postgresql"
    return session.scalar(_INSTANCE_LOCKED if locking else _INSTANCE, {"instance_id": instance_id})


def find(session: Session, client: OsbClient, instance_id: str, *, lock: bool = False) -> OsbInstance | None:
    """The client's instance by the platform's id; another platform's is none of its business."""
    instance = _locked(session, instance_id) if lock else session.get(OsbInstance, instance_id, options=[_LEAN_ADDON])
    return instance if instance is not None and instance.client_id == client.id else None


def _open_operation(session: Session, operation_id: str | None) -> Operation | None:
    operation = session.get(Operation, operation_id) if operation_id else None
    return operation if operation is not None and operation.state in (operations.PENDING, operations.RUNNING) else None


def state_of(session: Session, instance: OsbInstance) -> str:
    """The instance's state, read off its add-on (no second state machine)."""
    addon = instance.addon
    if addon.state == AddOnState.DEPROVISIONING:
        return DEPROVISIONING
    if addon.state == AddOnState.DEPROVISIONED or instance.deleted_at is not None:
        return DELETED
    if addon.state == AddOnState.PROVISIONING:
        return PROVISIONING
    if addon.state == AddOnState.FAILED:
        return FAILED
    if instance.operation_kind == UPDATE and _open_operation(session, instance.operation_id) is not None:
        return UPDATING
    return READY


def dashboard_url(settings: Settings, addon: AddOn) -> str | None:
    """The add-on's page in the owner's Berth dashboard."""
    return None if addon.app is None else _dashboard_url(settings, addon.app.name, addon.name)


def _dashboard_url(settings: Settings, app_name: str, addon_name: str) -> str:
    return f"{settings.api_url}/dashboard/apps/{app_name}/addons/{addon_name}"


# -- provision ------------------------------------------------------------------------------------

def _offered_plan(session: Session, service_id: str, plan_id: str) -> tuple[AddonService, Plan]:
    """The plan with its service in one statement (a provision's path); anything else is answered
    by `_service_and_plan`'s refusals."""
    if protocol.ID_PATTERN.match(service_id) and protocol.ID_PATTERN.match(plan_id):
        plan = session.scalar(_OFFERED_PLAN, {"plan_id": plan_id, "service_id": service_id})
        if plan is not None and plan.service.state != "shutdown":
            return plan.service, plan
    return _service_and_plan(session, service_id, plan_id)


def _service_and_plan(session: Session, service_id: str, plan_id: str) -> tuple[AddonService, Plan]:
    service = session.get(AddonService, service_id) if protocol.ID_PATTERN.match(service_id) else None
    if service is None or service.state == "shutdown" or not catalog.offered_plans(service):
        raise protocol.bad_request(f"No service {service_id} in the catalog.")
    plan = next((plan for plan in catalog.offered_plans(service) if plan.id == plan_id), None)
    if plan is None:
        raise protocol.bad_request(f"No plan {plan_id} in the catalog for the service {service.name}.")
    return service, plan


def _check_maintenance(service: AddonService, maintenance: dict[str, Any] | None) -> None:
    if maintenance is not None and maintenance.get("version") != catalog.maintenance_version(service):
        raise OsbError(422, f"maintenance_info.version {maintenance.get('version')!r} is not the plan's current "
                       f"{catalog.maintenance_version(service)}; fetch the catalog again.", "MaintenanceInfoConflict")


def context_key(params: dict[str, Any]) -> str:
    """Which app of the client's account the instance lives in: one per CF space, per Kubernetes
    namespace (and cluster), else one per platform."""
    context = params.get("context") or {}
    space = params.get("space_guid") or context.get("space_guid")
    if space:
        return f"space/{space}"
    if context.get("namespace"):
        return f"namespace/{context.get('clusterid', '')}/{context['namespace']}"
    return f"platform/{context.get('platform', '')}"


def context_app(session: Session, settings: Settings, client: OsbClient, key: str) -> AppRef:
    name = "osb-" + hashlib.sha256(f"{client.id}\0{key}".encode()).hexdigest()[:20]
    for _attempt in range(2):
        app = session.execute(_APP_BY_NAME, {"name": name}).first()
        if app is not None:
            if app.owner_id != client.owner_id:
                raise OsbError(500, "The instance's app belongs to another account; ask Berth's operator.")
            return AppRef(app.id, name)
        try:
            made = apps.create_app(session, settings, client.owner, name=name)
            return AppRef(made.id, made.name)
        except BerthError:  # made meanwhile by a concurrent request: read it
            continue
    raise OsbError(500, "Could not make the app that holds this platform's instances; try again.")


def _provision_answer(settings: Settings, instance: OsbInstance, status: int, *, operation: bool) -> Outcome:
    body: dict[str, Any] = {"dashboard_url": dashboard_url(settings, instance.addon)}
    if operation:
        body["operation"] = instance.operation_id
    return Outcome(status, body)


def _replay_provision(session: Session, settings: Settings, client: OsbClient, instance: OsbInstance,
                      sent: str) -> Outcome:
    """A PUT of an id that exists: the idempotency table of §8."""
    state = state_of(session, instance)
    if instance.client_id != client.id or state in (DELETED, FAILED):
        raise OsbError(409, f"The instance {instance.id} exists already"
                       + (f" and is {state}; delete it first or use a new id." if state == FAILED
                          else "; use a new id."))
    if sent != instance.fingerprint:
        raise OsbError(409, f"The instance {instance.id} exists with other attributes.")
    if state == PROVISIONING:
        return _provision_answer(settings, instance, 202, operation=True)
    if state == READY:
        return _provision_answer(settings, instance, 200, operation=False)
    raise concurrency_error(f"The instance {instance.id} is {state}; try again when that is done.")


def provision(session: Session, settings: Settings, client: OsbClient, instance_id: str, params: dict[str, Any],
              accepts_incomplete: bool) -> Outcome:
    sent = fingerprint({key: params.get(key) for key in
                        ("service_id", "plan_id", "parameters", "organization_guid", "space_guid")})
    existing = _locked(session, instance_id)
    if existing is not None:
        return _replay_provision(session, settings, client, existing, sent)
    service, plan = _offered_plan(session, params["service_id"], params["plan_id"])
    if not client.lenient_org_space and not (params["organization_guid"] and params["space_guid"]):
        raise protocol.bad_request("organization_guid and space_guid are required.")
    check_parameters(params["parameters"])
    _check_maintenance(service, params["maintenance_info"])
    sync = catalog.sync_capable(settings, service.name, plan.name)
    if not accepts_incomplete and not sync:
        raise protocol.async_required()
    try:
        app = context_app(session, settings, client, context_key(params))
        addon = provisioning.create_unattached_addon(session, settings, app, service, plan, params["parameters"])
        session.add(OsbInstance(
            id=instance_id, client_id=client.id, addon_id=addon.id, service_id=service.id, plan_id=plan.id,
            fingerprint=sent, parameters=params["parameters"], context=params["context"],
            organization_guid=params["organization_guid"], space_guid=params["space_guid"],
            maintenance_version=catalog.maintenance_version(service), operation_kind=PROVISION,
            operation_id=addon.operation_id))
        session.flush()
    except IntegrityError:
        # The same id, provisioned by a concurrent request that committed first (PostgreSQL: its row
        # was not there to lock; SQLite's writers take turns). This request has only read so far,
        # so dropping its transaction costs nothing and spares every provision a savepoint.
        session.rollback()
        existing = _locked(session, instance_id)
        if existing is None:
            raise
        return _replay_provision(session, settings, client, existing, sent)
    except BerthError as refused:  # the catalogue's own refusals (a deprecated plan, a region)
        raise protocol.bad_request(refused.message) from None
    body = {"dashboard_url": _dashboard_url(settings, app.name, addon.name)}
    accepted = Outcome(202, {**body, "operation": addon.operation_id}) if accepts_incomplete else Outcome(201, body)
    return _waiting(settings, accepted, sync, addon.id, addon.operation_id, 201)


def settle_provision(session: Session, settings: Settings, instance_id: str, waited: Outcome) -> Outcome:
    """A provision after its wait: created (201); else the 202 when the platform accepts one, or
    failed (500: the platform's orphan mitigation deletes it; the worker queued the clean-up)."""
    looked = waited.looked
    if looked is not None and looked.state == AddOnState.PROVISIONED and not looked.busy:
        # The wait's last look, read after the worker committed: the instance is ready.
        return Outcome(201, {"dashboard_url": waited.body["dashboard_url"]})
    instance = session.get(OsbInstance, instance_id, populate_existing=True)
    assert instance is not None
    session.refresh(instance.addon)
    state = state_of(session, instance)
    if state == READY:
        return _provision_answer(settings, instance, 201, operation=False)
    if waited.asynchronous:
        return waited
    if state == PROVISIONING:  # the worker is late: stop, so nothing is left behind unanswered
        provisioning.destroy_addon(session, None, instance.addon)
        instance.deleted_at = utcnow()
        raise OsbError(500, f"Provisioning did not finish in {settings.osb_sync_wait_seconds:g} s and was "
                       "cancelled; try again with accepts_incomplete=true.")
    raise OsbError(500, instance.addon.failure_message or "Provisioning failed.")


# -- update ---------------------------------------------------------------------------------------

def update(session: Session, settings: Settings, client: OsbClient, instance_id: str, params: dict[str, Any],
           accepts_incomplete: bool) -> Outcome:
    instance = find(session, client, instance_id, lock=True)
    if instance is None or state_of(session, instance) == DELETED:
        raise OsbError(404, f"No instance {instance_id}.")
    addon = instance.addon
    if params["service_id"] != addon.service_id:
        raise protocol.bad_request(f"The instance {instance_id} is of the service {addon.service_id}, "
                                   f"not {params['service_id']}.")
    sent = fingerprint({key: params.get(key) for key in ("plan_id", "parameters", "context", "maintenance_info")})
    state = state_of(session, instance)
    if state == UPDATING:
        if sent == instance.operation_fingerprint:
            return Outcome(202, {"operation": instance.operation_id})
        raise concurrency_error(f"The instance {instance_id} is being updated; try again when that is done.")
    if state in (PROVISIONING, DEPROVISIONING):
        raise concurrency_error(f"The instance {instance_id} is {state}; try again when that is done.")
    if state == FAILED:
        raise OsbError(422, f"The instance {instance_id} failed; delete it.", instance_usable=False
                       if protocol.at_least(16) else None)
    target = addon.plan
    if params.get("plan_id") and params["plan_id"] != addon.plan_id:
        _, target = _service_and_plan(session, addon.service_id, params["plan_id"])
    if "parameters" in params:
        check_parameters(params["parameters"])
        merged = {**instance.parameters, **params["parameters"]}
        if merged != instance.parameters:
            raise OsbError(422, "An instance's parameters are fixed once it is provisioned; provision a new "
                           "instance with the parameters you want.")
    if "maintenance_info" in params:
        _check_maintenance(addon.service, params["maintenance_info"])
    sync = (catalog.sync_capable(settings, addon.service.name, addon.plan.name)
            and catalog.sync_capable(settings, addon.service.name, target.name))
    if not accepts_incomplete and not sync:
        raise protocol.async_required()
    if "context" in params:
        instance.context = params["context"]
    if "maintenance_info" in params:
        instance.maintenance_version = params["maintenance_info"]["version"]
    if target.id == addon.plan_id:
        return Outcome(200, {})
    try:
        operation_id = provisioning.change_plan(session, client.owner, addon, target.id)
    except BerthError as refused:
        raise OsbError(422, refused.message) from None
    instance.operation_kind, instance.operation_id, instance.operation_fingerprint = UPDATE, operation_id, sent
    session.flush()
    accepted = Outcome(202, {"operation": operation_id}) if accepts_incomplete else Outcome(200)
    return _waiting(settings, accepted, sync, addon.id, operation_id, 200)


def settle_update(session: Session, instance_id: str, waited: Outcome) -> Outcome:
    instance = session.get(OsbInstance, instance_id, populate_existing=True)
    assert instance is not None
    operation = session.get(Operation, instance.operation_id, populate_existing=True)
    if operation is not None and operation.state == operations.DONE:
        return Outcome(200, {})
    if waited.asynchronous:
        return waited
    if operation is not None and operation.state == operations.FAILED:
        raise OsbError(422, operation.message or "The plan change failed; the instance keeps its plan.")
    raise OsbError(500, "The plan change is still running; fetch the instance later to see its plan.")


# -- deprovision ----------------------------------------------------------------------------------

def revoke_bindings(session: Session, instance: OsbInstance) -> None:
    """Platforms unbind first; whatever they left is revoked with the instance."""
    for binding in session.scalars(select(OsbBinding).where(OsbBinding.instance_id == instance.id,
                                                           OsbBinding.deleted_at.is_(None))):
        binding.deleted_at, binding.credentials, binding.syslog_drain_url = utcnow(), None, None


def deprovision(session: Session, settings: Settings, client: OsbClient, instance_id: str,
                accepts_incomplete: bool) -> Outcome:
    instance = find(session, client, instance_id, lock=True)
    if instance is None:
        raise OsbError(410, f"No instance {instance_id}.")
    state, addon = state_of(session, instance), instance.addon
    if state == DELETED:
        raise OsbError(410, f"The instance {instance_id} is already deleted.")
    if state == DEPROVISIONING:
        if instance.operation_kind == DEPROVISION and instance.operation_id:
            return Outcome(202, {"operation": instance.operation_id})
        raise concurrency_error(f"The instance {instance_id} is being deleted.")
    if state == UPDATING:
        raise concurrency_error(f"The instance {instance_id} is being updated; delete it when that is done.")
    pending = operations.open_operation(session, addon)
    quick = state == FAILED or (state == PROVISIONING and pending is not None
                                and pending.kind == operations.PROVISION and pending.state == operations.PENDING)
    if not (quick or accepts_incomplete or catalog.sync_capable(settings, addon.service.name, addon.plan.name)):
        raise protocol.async_required()
    provisioning.destroy_addon(session, client.owner, addon)
    revoke_bindings(session, instance)
    instance.deleted_at = utcnow()
    instance.operation_kind, instance.operation_fingerprint = DEPROVISION, None
    if addon.state == AddOnState.DEPROVISIONED:  # nothing was left to do at the provider
        instance.operation_id = None
        return Outcome(200, {})
    instance.operation_id = session.scalar(
        select(Operation.id).where(Operation.addon_id == addon.id, Operation.kind == operations.DEPROVISION)
        .order_by(Operation.created_at.desc()).limit(1))
    session.flush()
    accepted = Outcome(202, {"operation": instance.operation_id}) if accepts_incomplete else Outcome(200)
    sync = catalog.sync_capable(settings, addon.service.name, addon.plan.name)
    return _waiting(settings, accepted, sync, addon.id, instance.operation_id, 200)


def settle_deprovision(session: Session, instance_id: str, waited: Outcome) -> Outcome:
    instance = session.get(OsbInstance, instance_id, populate_existing=True)
    assert instance is not None
    session.refresh(instance.addon)
    if instance.addon.state == AddOnState.DEPROVISIONED:
        return Outcome(200, {})
    if waited.asynchronous:
        return waited
    raise OsbError(500, "The instance is still being deleted; poll last_operation or delete again later.")


# -- reads ----------------------------------------------------------------------------------------

def last_operation(session: Session, client: OsbClient, instance_id: str) -> dict[str, Any]:
    """The instance's latest operation (the `operation` token is not needed to find it)."""
    instance = find(session, client, instance_id)
    if instance is None:
        raise OsbError(404, f"No instance {instance_id}.")
    addon, kind = instance.addon, instance.operation_kind
    if kind == PROVISION:
        if addon.state == AddOnState.PROVISIONING:
            return {"state": IN_PROGRESS, "description": addon.provision_message or "Provisioning."}
        if addon.state == AddOnState.FAILED:
            return {"state": FAILED_STATE, "description": addon.failure_message or "Provisioning failed."}
        return {"state": SUCCEEDED, "description": addon.provision_message or "Provisioned."}
    if kind == UPDATE:
        operation = session.get(Operation, instance.operation_id)
        if operation is None or operation.state == operations.DONE:
            return {"state": SUCCEEDED, "description": f"On the plan {addon.plan.name}."}
        if operation.state == operations.FAILED:
            return {"state": FAILED_STATE, "description": operation.message or "The plan change failed.",
                    "instance_usable": True, "update_repeatable": True}
        return {"state": IN_PROGRESS, "description": "Changing the plan."}
    if addon.state == AddOnState.DEPROVISIONING:
        return {"state": IN_PROGRESS, "description": "Deprovisioning."}
    return {"state": SUCCEEDED, "description": "Deprovisioned."}


def fetch(session: Session, settings: Settings, client: OsbClient, instance_id: str) -> dict[str, Any]:
    instance = find(session, client, instance_id)
    state = state_of(session, instance) if instance is not None else DELETED
    if instance is None or state in (DELETED, PROVISIONING, FAILED, DEPROVISIONING):
        raise OsbError(404, f"No instance {instance_id}" + (f" yet (it is {state})." if state == PROVISIONING else "."))
    if state == UPDATING:
        raise concurrency_error(f"The instance {instance_id} is being updated.")
    addon = instance.addon
    maintenance = {"version": instance.maintenance_version} if instance.maintenance_version else None
    return {"service_id": addon.service_id, "plan_id": addon.plan_id, "dashboard_url": dashboard_url(settings, addon),
            "parameters": instance.parameters, "maintenance_info": maintenance}
