"""Provisioning, the worker side: what a provider call needs, and applying its answer.

A worker copies a `Call` out of the database, calls the provider outside any transaction, and
applies the answer in a new one: the add-on moves on, its config goes live on every attached
app (a release each), or it fails with a user-safe message and, when the provider may hold
something, a deprovision to make sure it does not keep it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from berth.broker import attachments, operations, partner_auth
from berth.broker.models import AddOn, AddOnState, AddonService, Attachment, Operation, Plan
from berth.broker.partner_api.client import Outcome, ProviderAnswer, ProviderEndpoint
from berth.config import Settings
from berth.db import utcnow
from berth.platform.logs import drains, tokens
from berth.platform.models import App

log = logging.getLogger(__name__)
GENERIC_FAILURE = "The add-on provider could not be reached or gave an invalid answer. Please try again later."
MAX_PLAN_CHANGE_ATTEMPTS = 5
MAX_UNANSWERED_PROVISION_ATTEMPTS = 3  # provision calls that got no answer at all, before failing


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
    return replace(call, oauth_grant=partner_auth.mint_grant(addon.id),
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
    if addon.state != AddOnState.PROVISIONING:
        operations.finish(operation, message=f"Add-on is {addon.state}; answer not applied.")
        return
    if answer.outcome == Outcome.SUCCEEDED:
        addon.provider_id, addon.provision_message = answer.provider_id, answer.message
        addon.config = json.dumps(answer.config, sort_keys=True)
        addon.log_drain_url = answer.log_drain_url
        addon.state, addon.deadline_at = AddOnState.PROVISIONED, None
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
    addon.state, addon.failure_message, addon.deadline_at = AddOnState.FAILED, message, None
    partner_auth.revoke(session, addon)
    if mitigate:
        operations.enqueue(session, addon, operations.DEPROVISION)


def _apply_plan_change(session: Session, settings: Settings, operation: Operation, addon: AddOn,
                       answer: ProviderAnswer) -> None:
    target = session.get(Plan, operation.target_plan_id)
    assert target is not None
    if addon.state != AddOnState.PROVISIONED:
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
        if addon.state == AddOnState.DEPROVISIONING:
            addon.state = AddOnState.DEPROVISIONED
            partner_auth.revoke(session, addon)
        operations.finish(operation)
    else:  # keep trying: the partner must not keep a resource nobody pays for
        operations.retry_later(operation, settings.retry_base_seconds,
                               f"{answer.outcome.value} ({answer.status}): {answer.detail}")


def expire_async_provisions(session: Session) -> int:
    """Add-ons still `provisioning` past their deadline have failed."""
    overdue = session.scalars(select(AddOn).where(AddOn.state == AddOnState.PROVISIONING,
                                                  AddOn.deadline_at.is_not(None),
                                                  AddOn.deadline_at <= utcnow())).all()
    for addon in overdue:
        fail_provision(session, addon, "The provider did not finish provisioning in time.", mitigate=True)
    session.flush()
    return len(overdue)
