"""What a provision request must know before it writes, read in one statement.

The app (as the caller may see it), the plan and its service (`service:plan`, a plan's uuid,
`<service-uuid>:plan`, or a bare service name meaning its default plan), the attachment names and
config var owners on the app, whether the requested add-on name is taken and whether the app
already has a live add-on of the service. One round trip instead of one per question; the
request's checks then run on these facts, in the order the refusals have always come.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, literal, select
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN
from berth.broker import attachments, catalogue
from berth.broker.addon_records import AppRef, AttachTarget, PlanFacts, ServiceFacts
from berth.broker.models import AddOn, AddOnState, AddonService, Plan
from berth.db import PreparedStatement, json_value
from berth.platform import config_vars
from berth.platform.apps import visible_to
from berth.platform.models import App

LIVE_STATES = (AddOnState.PROVISIONING.value, AddOnState.PROVISIONED.value)


@dataclass(frozen=True)
class ProvisionContext:
    target: AttachTarget           # the app, with what an attachment there must avoid
    service: ServiceFacts | None   # None with plan: no such plan
    plan: PlanFacts | None
    name_taken: bool               # the requested add-on name belongs to another add-on
    service_on_app: bool           # the app has a provisioning or provisioned add-on of the service


@functools.cache
def _statement(app_by_id: bool, form: str) -> PreparedStatement:
    plan_match, order = catalogue.plan_match(form)
    plan_with_service = Plan.__table__.join(AddonService.__table__, AddonService.id == Plan.service_id)
    service_on_app = exists().where(AddOn.app_id == App.id, AddOn.service_id == AddonService.id,
                                    AddOn.state.in_([literal(state) for state in LIVE_STATES]))
    return PreparedStatement(
        select(App.id, App.name,
               AddonService.id, AddonService.name, AddonService.human_name, AddonService.state,
               AddonService.regions, AddonService.requires, AddonService.config_vars_prefix,
               AddonService.config_vars,
               Plan.id, Plan.name, Plan.state, Plan.cents, Plan.unit, Plan.contract, Plan.metered,
               attachments.taken_names(App.id), config_vars.var_owners(App.id),
               exists().where(AddOn.name == bindparam("addon_name")), service_on_app)
        .select_from(App.__table__.outerjoin(plan_with_service, plan_match))
        .where((App.id if app_by_id else App.name) == bindparam("app_ref"), visible_to(bindparam("caller_id")))
        .order_by(*order).limit(1))


def read(session: Session, caller_id: str, app_ref: str, plan_ref: str,
         addon_name: str | None) -> ProvisionContext | None:
    """The facts, in the request's transaction; None when the caller sees no such app."""
    app_by_id = bool(UUID_PATTERN.match(app_ref))
    form, params = catalogue.plan_form(plan_ref)
    rows = _statement(app_by_id, form).run_in(session, {
        **params, "app_ref": app_ref.lower() if app_by_id else app_ref, "caller_id": caller_id,
        "addon_name": addon_name})
    if not rows:
        return None
    (app_id, app_name, service_id, service_name, human_name, service_state, regions, requires, prefix,
     declared, plan_id, plan_name, plan_state, cents, unit, contract, metered, taken, owners, name_taken,
     service_on_app) = rows[0]
    service = plan = None
    if plan_id is not None:
        service = ServiceFacts(service_id, service_name, human_name, service_state, json_value(regions) or [],
                               json_value(requires) or [], prefix, json_value(declared) or [])
        plan = PlanFacts(plan_id, plan_name, service_name, plan_state, cents, unit, bool(contract), bool(metered))
    return ProvisionContext(AttachTarget.from_raw(AppRef(app_id, app_name), taken, owners), service, plan,
                            bool(name_taken), bool(service_on_app))
