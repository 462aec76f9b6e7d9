"""OSB bindings: a grant of an instance's credentials to one platform binding. The credentials are
the config vars an attachment would inject (`DATABASE_URL`, `REDIS_URL`, `KAFKA_URL` and its
certificates, ...), flat, plus `uri` for buildpacks that look for it; kept encrypted, so a replayed
PUT or a GET answers the same. Binding is synchronous (the credentials exist once the add-on is
provisioned), which is what platforms that never send `accepts_incomplete` on binds need.

A provider whose manifest `requires` `grants` (every first-party data store) makes each binding
credentials of its own (`PUT <base>/<id>/grants/<binding id>`), so unbinding revokes them alone
(`DELETE …`); any other partner's bindings share the add-on's own config, as attachments do. The
provider is called between two transactions (`bind`/`unbind` answer a `GrantCall` first, the API
commits, calls, and calls again with the result): it may be in this very process."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, lazyload

from berth.broker import attachments, outcomes
from berth.broker.models import AddOn, AddonService
from berth.broker.osb import instances, protocol
from berth.broker.osb.instances import Outcome
from berth.broker.osb.models import OsbBinding, OsbClient, OsbInstance
from berth.broker.osb.protocol import OsbError, concurrency_error
from berth.broker.partner_api.client import Outcome as Answered
from berth.broker.partner_api.client import ProviderAnswer, ProviderClient, ProviderEndpoint
from berth.db import utcnow


GRANTS = "grants"  # the manifest's `requires` flag: credentials per binding


@dataclass(frozen=True)
class GrantCall:
    """A provider call a bind or unbind needs, made by the caller outside the transaction."""
    endpoint: ProviderEndpoint
    resource_id: str
    grant_id: str


def _grant_call(addon: AddOn, binding_id: str) -> GrantCall | None:
    if GRANTS not in addon.service.requires:
        return None
    return GrantCall(outcomes.endpoint_of(addon.service), addon.provider_id or addon.id, binding_id)


def make_grant(client: ProviderClient, call: GrantCall) -> dict[str, str]:
    """The binding's own config from the provider; a failure is the platform's to retry."""
    answer = client.grant(call.endpoint, call.resource_id, call.grant_id)
    if answer.outcome == Answered.SUCCEEDED:
        return answer.config
    _refused(call, answer, "make the binding's credentials")
    raise AssertionError  # unreachable: _refused raises


def revoke_grant(client: ProviderClient, call: GrantCall) -> None:
    """Revoked, or already gone at the provider; otherwise the binding stays, for a retried DELETE."""
    answer = client.revoke(call.endpoint, call.resource_id, call.grant_id)
    if answer.outcome not in (Answered.SUCCEEDED, Answered.GONE):
        _refused(call, answer, "revoke the binding's credentials")


def _refused(call: GrantCall, answer: ProviderAnswer, doing: str) -> None:
    service = call.endpoint.service
    if answer.outcome == Answered.REFUSED:
        raise OsbError(422, answer.message or f"{service} refused to {doing}.")
    if answer.outcome == Answered.GONE:  # the instance is gone there, or grants are declared but not served
        raise OsbError(422, f"{service} could not {doing}: it does not know the instance or serves no "
                            "credentials per binding; its provider must fix that.")
    raise OsbError(500, f"{service} could not {doing} just now ({answer.outcome.value}); try again shortly.")


def credentials_of(addon: AddOn, config: dict[str, str] | None = None) -> dict[str, str]:
    """The config vars an attachment would inject (the add-on's own, or a grant's `config`), flat."""
    prefix = addon.service.config_vars_prefix
    flat = attachments.vars_in_app(attachments.addon_config(addon) if config is None else config, prefix, prefix)
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


# What a bind reads of the instance: its add-on with the service (requires, config var prefix, the
# endpoint a grant calls); not the plan, the app or the accounts owning them.
_BIND_LOAD = (joinedload(OsbInstance.addon).options(
    joinedload(AddOn.service).lazyload(AddonService.owner), lazyload(AddOn.plan), lazyload(AddOn.app)),)


def _instance_and_binding(session: Session, instance_id: str, binding_id: str, *,
                          fresh: bool = False) -> tuple[OsbInstance | None, OsbBinding | None]:
    """The instance (locked on PostgreSQL: one mutation at a time) and the binding if it exists,
    in one statement; `fresh`: read again over what the session holds from before a commit."""
    query = (select(OsbInstance, OsbBinding).options(*_BIND_LOAD).where(OsbInstance.id == instance_id)
             .outerjoin(OsbBinding, (OsbBinding.instance_id == OsbInstance.id) & (OsbBinding.id == binding_id)))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=OsbInstance)
    if fresh:
        query = query.execution_options(populate_existing=True)
    row = session.execute(query).first()
    return (row[0], row[1]) if row is not None else (None, None)


def _replay(binding: OsbBinding, sent: str) -> Outcome:
    if binding.deleted_at is not None:
        raise OsbError(409, f"The binding {binding.id} was deleted; bindings' ids are not reused.")
    if binding.fingerprint != sent:
        raise OsbError(409, f"The binding {binding.id} exists with other attributes.")
    return Outcome(200, _answer(binding))


def bind(session: Session, client: OsbClient, instance_id: str, binding_id: str, params: dict[str, Any],
         granted: dict[str, str] | None = None) -> Outcome | GrantCall:
    """The binding, or first the `GrantCall` whose answer (`make_grant`) comes back as `granted`:
    then every check is made again (the instance may have changed meanwhile) before it is written."""
    instance, existing = _instance_and_binding(session, instance_id, binding_id, fresh=granted is not None)
    if instance is not None and instance.client_id != client.id:
        instance = None  # another platform's instance is none of this one's business
    state = instances.state_of(session, instance) if instance is not None else instances.DELETED
    if instance is None or state == instances.DELETED:
        raise OsbError(404, f"No instance {instance_id}.")
    sent = instances.fingerprint({key: params.get(key) for key in
                                  ("service_id", "plan_id", "parameters", "bind_resource", "app_guid")})
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
    grant = _grant_call(addon, binding_id)
    if grant is not None and granted is None:
        return grant
    credentials = json.dumps(credentials_of(addon, granted if grant is not None else None), sort_keys=True)
    drain = addon.log_drain_url if "syslog_drain" in addon.service.requires else None
    try:  # one INSERT, no ORM unit of work: the instance is locked, so only an identical PUT races it
        session.execute(insert(OsbBinding).values(
            instance_id=instance_id, id=binding_id, service_id=addon.service_id, plan_id=addon.plan_id,
            fingerprint=sent, parameters=params["parameters"], bind_resource=params["bind_resource"],
            context=params["context"], credentials=credentials, syslog_drain_url=drain))
    except IntegrityError:  # a concurrent PUT of the same binding committed first (during the grant)
        session.rollback()  # nothing else was written; the platform gets that binding, as a replay
        existing = _binding(session, instance_id, binding_id)
        if existing is None:
            raise
        return _replay(existing, sent)
    return Outcome(201, {"credentials": json.loads(credentials), "syslog_drain_url": drain})


def _live_instance(session: Session, client: OsbClient, instance_id: str) -> OsbInstance | None:
    return instances.find(session, client, instance_id)


def unbind(session: Session, client: OsbClient, instance_id: str, binding_id: str, *,
           revoked: bool = False) -> Outcome | GrantCall:
    """The grant goes: its credentials are forgotten and GET answers 404. With credentials of its
    own, first the `GrantCall` to revoke them (`revoke_grant`, then again with `revoked`); without,
    the instance's own credentials stay, shared by its other bindings."""
    instance = _live_instance(session, client, instance_id)
    binding = _binding(session, instance_id, binding_id, lock=True) if instance is not None else None
    if binding is None or binding.deleted_at is not None:
        raise OsbError(410, f"No binding {binding_id}.")
    grant = _grant_call(instance.addon, binding_id) if instance is not None else None
    if grant is not None and not revoked:
        return grant
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
