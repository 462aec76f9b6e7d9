"""OSB bindings: a grant of an instance's credentials to one platform binding. The credentials are
the config vars an attachment would inject (`DATABASE_URL`, `REDIS_URL`, `KAFKA_URL` and its
certificates, ...), flat, plus `uri` for buildpacks that look for it; kept encrypted, so a replayed
PUT or a GET answers the same. Binding is synchronous (the credentials exist once the add-on is
provisioned), which is what platforms that never send `accepts_incomplete` on binds need."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.broker import attachments
from berth.broker.models import AddOn
from berth.broker.osb import instances, protocol
from berth.broker.osb.instances import Outcome
from berth.broker.osb.models import OsbBinding, OsbClient, OsbInstance
from berth.broker.osb.protocol import OsbError, concurrency_error
from berth.db import utcnow


def credentials_of(addon: AddOn) -> dict[str, str]:
    prefix = addon.service.config_vars_prefix
    flat = attachments.vars_in_app(attachments.addon_config(addon), prefix, prefix)
    url = flat.get(f"{prefix}_URL")
    if url and "uri" not in flat:
        flat["uri"] = url
    return flat


def _answer(binding: OsbBinding, *, with_parameters: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"credentials": json.loads(binding.credentials or "{}"),
                            "syslog_drain_url": binding.syslog_drain_url}
    if with_parameters:
        body["parameters"] = binding.parameters
    return body


def _binding(session: Session, instance_id: str, binding_id: str, *, lock: bool = False) -> OsbBinding | None:
    query = select(OsbBinding).where(OsbBinding.instance_id == instance_id, OsbBinding.id == binding_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def _replay(binding: OsbBinding, sent: str) -> Outcome:
    if binding.deleted_at is not None:
        raise OsbError(409, f"The binding {binding.id} was deleted; bindings' ids are not reused.")
    if binding.fingerprint != sent:
        raise OsbError(409, f"The binding {binding.id} exists with other attributes.")
    return Outcome(200, _answer(binding))


def bind(session: Session, client: OsbClient, instance_id: str, binding_id: str, params: dict[str, Any]) -> Outcome:
    instance = instances.find(session, client, instance_id, lock=True)
    state = instances.state_of(session, instance) if instance is not None else instances.DELETED
    if instance is None or state == instances.DELETED:
        raise OsbError(404, f"No instance {instance_id}.")
    sent = instances.fingerprint({key: params.get(key) for key in
                                  ("service_id", "plan_id", "parameters", "bind_resource", "app_guid")})
    existing = _binding(session, instance_id, binding_id, lock=True)
    if existing is not None:
        return _replay(existing, sent)
    addon = instance.addon
    if params["service_id"] != addon.service_id:
        raise protocol.bad_request(f"The instance {instance_id} is not of the service {params['service_id']}.")
    if params["plan_id"] != addon.plan_id:
        raise protocol.bad_request(f"The instance {instance_id} is not on the plan {params['plan_id']}.")
    if params["parameters"]:
        raise protocol.bad_request("Bindings take no parameters (the plan's binding schema allows none).")
    if params["predecessor_binding_id"] is not None:
        raise protocol.bad_request("Bindings of this plan are not rotatable; make a new binding instead.")
    if state in (instances.PROVISIONING, instances.UPDATING, instances.DEPROVISIONING):
        raise concurrency_error(f"The instance {instance_id} is {state}; bind once that is done.")
    if state == instances.FAILED:
        raise OsbError(422, f"The instance {instance_id} failed; it cannot be bound.")
    binding = OsbBinding(
        instance_id=instance_id, id=binding_id, service_id=addon.service_id, plan_id=addon.plan_id, fingerprint=sent,
        parameters=params["parameters"], bind_resource=params["bind_resource"], context=params["context"],
        credentials=json.dumps(credentials_of(addon), sort_keys=True),
        syslog_drain_url=addon.log_drain_url if "syslog_drain" in addon.service.requires else None)
    try:
        with session.begin_nested():
            session.add(binding)
            session.flush()
    except IntegrityError:  # a concurrent PUT of the same binding committed first
        existing = _binding(session, instance_id, binding_id)
        if existing is None:
            raise
        return _replay(existing, sent)
    return Outcome(201, _answer(binding))


def _live_instance(session: Session, client: OsbClient, instance_id: str) -> OsbInstance | None:
    return instances.find(session, client, instance_id)


def unbind(session: Session, client: OsbClient, instance_id: str, binding_id: str) -> Outcome:
    """The grant goes: its credentials are forgotten and GET answers 404 (the instance's own
    credentials stay, shared by its other bindings)."""
    instance = _live_instance(session, client, instance_id)
    binding = _binding(session, instance_id, binding_id, lock=True) if instance is not None else None
    if binding is None or binding.deleted_at is not None:
        raise OsbError(410, f"No binding {binding_id}.")
    binding.deleted_at, binding.credentials, binding.syslog_drain_url = utcnow(), None, None
    session.flush()
    return Outcome(200, {})


def fetch(session: Session, client: OsbClient, instance_id: str, binding_id: str) -> dict[str, Any]:
    instance = _live_instance(session, client, instance_id)
    binding = _binding(session, instance_id, binding_id) if instance is not None else None
    if binding is None or binding.deleted_at is not None:
        raise OsbError(404, f"No binding {binding_id}.")
    return _answer(binding, with_parameters=True)


def last_operation(session: Session, client: OsbClient, instance_id: str, binding_id: str) -> dict[str, Any]:
    """Bindings are made and removed synchronously: a known one (or one deleted) has succeeded."""
    instance = _live_instance(session, client, instance_id)
    binding = _binding(session, instance_id, binding_id) if instance is not None else None
    if binding is None:
        raise OsbError(404, f"No binding {binding_id}.")
    return {"state": instances.SUCCEEDED,
            "description": "Unbound." if binding.deleted_at is not None else "Bound."}
