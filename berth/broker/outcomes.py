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

from sqlalchemy import Text, bindparam, func, select, type_coerce, update
from sqlalchemy.orm import Load, Session, aliased, joinedload

from berth import crypto
from berth.broker import attachments, operations, partner_auth
from berth.broker.models import AddOn, AddOnState, AddonService, Attachment, Operation, Plan
from berth.broker.partner_api.client import Outcome, ProviderAnswer, ProviderEndpoint
from berth.config import Settings
from berth.db import (Database, EncryptedText, PreparedStatement, UTCDateTime, json_column, json_list,
                      json_record, json_rows, loaded_json, returned, utcnow)
from berth.jobs import queue
from berth.platform import releases
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
    attempts: int = 0  # the operation's attempts after this claim: the answer is applied only under it


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


# What a call needs of the operation's add-on, service and plan, as one JSON object returned by
# the claim itself (the service's password as its ciphertext, decrypted here).
_target = aliased(Plan)
_target_plan = select(_target.name).where(_target.id == Operation.target_plan_id).correlate(Operation).scalar_subquery()
_CALL_CONTEXT = (
    select(json_record(
        "name", AddOn.name, "region", AddOn.region, "options", json_column(AddOn.options),
        "service", AddonService.name, "password", type_coerce(AddonService.password, Text),
        "base_url", AddonService.base_url, "config_vars", json_column(AddonService.config_vars),
        "requires", json_column(AddonService.requires), "plan", func.coalesce(_target_plan, Plan.name)))
    .join_from(AddOn, AddonService, AddonService.id == AddOn.service_id)
    .join(Plan, Plan.id == AddOn.plan_id)
    .where(AddOn.id == Operation.addon_id).correlate(Operation).scalar_subquery())
_CLAIM = PreparedStatement(operations.QUEUE.claim(Operation.kind, Operation.addon_id, returned(_CALL_CONTEXT)))


def claim_call(database: Database) -> Call | None:
    """Claim the oldest due operation and copy out its call: one statement, committed on its own
    (services needing a log drain token or a log input URL cost a transaction more)."""
    rows = _CLAIM.run(database.autocommit_engine, operations.QUEUE.claim_times())
    if not rows:
        return None
    [(operation_id, attempts, kind, addon_id, context)] = rows
    operations.QUEUE.took(database, operation_id, attempts)
    found = loaded_json(context)
    endpoint = ProviderEndpoint(service=found["service"], password=crypto.keyring().decrypt(found["password"]),
                                base_url=found["base_url"], config_vars=tuple(found["config_vars"] or ()),
                                requires=tuple(found["requires"] or ()))
    call = Call(operation_id, kind, endpoint, addon_id, found["name"], found["plan"], found["region"],
                dict(found["options"] or {}), addon_id, None, attempts=attempts)
    if kind != operations.PROVISION:
        return call
    call = replace(call, oauth_grant=partner_auth.mint_grant(addon_id))
    if "syslog_drain" in endpoint.requires or "log_input" in endpoint.requires:
        with database.transaction() as session:
            call = _with_log_wiring(session, call)
    return call


def _with_log_wiring(session: Session, call: Call) -> Call:
    """The drain token (kept: a retried call sends the same one) and the log input token."""
    addon = session.get(AddOn, call.addon_id, options=lean_addon_load(Load(AddOn), with_attachments=False))
    assert addon is not None
    requires = call.endpoint.requires
    if "syslog_drain" in requires and addon.log_drain_token is None:
        addon.log_drain_token = drains.new_drain_token()
    owner = attachments.owner_attachment(addon) if "log_input" in requires else None  # loads attachments
    return replace(call, log_input_token=tokens.owned_input_token(session, owner.id) if owner is not None else None,
                   log_drain_token=addon.log_drain_token if "syslog_drain" in requires else None)


# A provision's success, applied only while the add-on is provisioning and the operation still
# this claim's: the add-on, with what going live needs, in one statement (which also locks the
# apps it is attached to on PostgreSQL, before their config is read).
_attached = (select(json_rows(json_list(Attachment.id, Attachment.app_id, Attachment.name)))
             .where(Attachment.addon_id == AddOn.id).scalar_subquery())
_PROVISIONED = PreparedStatement(
    update(AddOn).where(AddOn.id == bindparam("addon_id"), AddOn.state == AddOnState.PROVISIONING,
                        operations.QUEUE.still_claimed(bindparam("operation_id"), bindparam("attempts")))
    .values(state=AddOnState.PROVISIONED, provider_id=bindparam("provider_id"),
            provision_message=bindparam("message"), config=bindparam("config", type_=EncryptedText()),
            log_drain_url=bindparam("log_drain_url", type_=EncryptedText()), deadline_at=None,
            updated_at=bindparam("now", type_=UTCDateTime()))
    .returning(AddOn.name, AddOn.app_id, AddOn.log_drain_token,
               returned(select(AddonService.config_vars_prefix).where(AddonService.id == AddOn.service_id)
                        .scalar_subquery()),
               returned(_attached),
               returned(releases.locking_apps(select(Attachment.app_id).where(Attachment.addon_id == AddOn.id)
                                                  .correlate(AddOn)))))


def _provisioned(session: Session, call: Call, answer: ProviderAnswer) -> bool:
    """The provider created it: the add-on goes live on every attached app. False, changing
    nothing, when the add-on is no longer provisioning or the operation no longer this claim's."""
    now = utcnow()
    config = json.dumps(answer.config, sort_keys=True)
    rows = _PROVISIONED.run_in(session, {
        "addon_id": call.addon_id, "operation_id": call.operation_id, "attempts": call.attempts,
        "provider_id": answer.provider_id, "message": answer.message, "config": config,
        "log_drain_url": answer.log_drain_url, "now": now})
    if not rows:
        return False
    [(name, app_id, drain_token, prefix, attached, _locked)] = rows
    targets = sorted((attachments.Target(*row) for row in loaded_json(attached) or ()), key=lambda t: t.app_id)
    live = attachments.LiveAddon(call.addon_id, name, app_id, prefix, answer.config, answer.log_drain_url, drain_token)
    attachments.go_live_everywhere(session, live, targets, None)
    operations.QUEUE.finish_claimed.run_in(session, {
        "job_id": call.operation_id, "attempts": call.attempts, "state": operations.DONE,
        "message": answer.message, "detail": None, "now": now})
    return True


def apply_answer(session: Session, settings: Settings, call: Call, answer: ProviderAnswer) -> None:
    if call.kind == operations.PROVISION and answer.outcome == Outcome.SUCCEEDED and _provisioned(session, call, answer):
        return
    operation = session.get(Operation, call.operation_id, options=_worker_load(with_attachments=True))
    if operation is None or operation.state != operations.RUNNING or operation.attempts != call.attempts:
        return  # someone else finished it, or claimed it again (a lapsed lease): their answer stands
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
    """Every outcome but a success on a provisioning add-on (`_provisioned`)."""
    if addon.state != AddOnState.PROVISIONING or answer.outcome == Outcome.SUCCEEDED:
        queue.finish(operation, message=f"Add-on is {addon.state}; answer not applied.")
    elif answer.outcome == Outcome.ACCEPTED:
        addon.provider_id, addon.provision_message = answer.provider_id, answer.message
        addon.log_drain_url = answer.log_drain_url  # if it gave one already; used on completion
        addon.deadline_at = utcnow() + timedelta(seconds=settings.async_provision_timeout_seconds)
        queue.finish(operation, message=answer.message)
    elif answer.connection_error and operation.attempts < MAX_UNANSWERED_PROVISION_ATTEMPTS:
        # The provider was unreachable even after the client's quick retries (restarting?):
        # the call carries the uuid, so asking again later is safe; failing now is not needed.
        queue.retry_later(operation, settings.retry_base_seconds, answer.detail)
    else:
        refused = answer.outcome == Outcome.REFUSED
        fail_provision(session, addon, (answer.message if refused and answer.message else GENERIC_FAILURE),
                       mitigate=not refused)
        queue.finish(operation, message=addon.failure_message, detail=answer.detail, failed=True)


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
        queue.finish(operation, message=f"Add-on is {addon.state}; plan change dropped.", failed=True)
    elif answer.outcome in (Outcome.SUCCEEDED, Outcome.ACCEPTED):
        addon.plan_id, addon.plan, addon.failure_message = target.id, target, None
        if answer.config:
            merged = {**attachments.addon_config(addon), **answer.config}
            addon.config = json.dumps(merged, sort_keys=True)
            attachments.release_config_everywhere(session, addon, None,
                                                  f"Update {addon.service.config_vars_prefix} by {addon.service.name}")
        queue.finish(operation, message=answer.message)
    elif answer.outcome == Outcome.REFUSED:
        _fail_plan_change(operation, addon, target, answer.message or "The provider refused the plan change.",
                          answer.detail)
    elif operation.attempts >= MAX_PLAN_CHANGE_ATTEMPTS:
        _fail_plan_change(operation, addon, target, "The provider could not be reached or gave an invalid "
                          "answer; try again later.", answer.detail)
    else:
        queue.retry_later(operation, settings.retry_base_seconds, answer.detail)


def _fail_plan_change(operation: Operation, addon: AddOn, target: Plan, reason: str, detail: str) -> None:
    """The add-on keeps its plan; the reason stays on it (`failure_message`, shown by the API and
    the add-on's page) for whoever asked and stopped waiting, until the next plan change."""
    message = f"Changing {addon.name} to {target.full_name} failed; it stays on {addon.plan.full_name}. {reason}"
    addon.failure_message = message[:1000]
    queue.finish(operation, message=reason, detail=detail, failed=True)


def _apply_deprovision(session: Session, settings: Settings, operation: Operation, addon: AddOn,
                       answer: ProviderAnswer) -> None:
    if answer.outcome in (Outcome.SUCCEEDED, Outcome.GONE, Outcome.ACCEPTED):
        if addon.state == AddOnState.DEPROVISIONING:
            addon.state = AddOnState.DEPROVISIONED
            partner_auth.revoke(session, addon)
        queue.finish(operation)
    else:  # keep trying: the partner must not keep a resource nobody pays for
        queue.retry_later(operation, settings.retry_base_seconds,
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
