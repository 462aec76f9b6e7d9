"""Add-on actions: operations a provider offers beyond provisioning (rotate credentials, capture a
backup, create a topic), run for a user through `POST /apps/{app}/addons/{addon}/actions/{name}`.

Berth checks who asks, forwards the call to the provider (Berth's extension of the partner API,
`POST <base>/<id>/actions/<name>`), and when the provider answers with new config, makes it a
release on every attached app before answering, as a partner's config update does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from berth.broker import outcomes, partner_callbacks
from berth.broker.models import AddOn, AddOnState
from berth.broker.partner_api.client import Outcome, ProviderAnswer, ProviderClient, ProviderEndpoint
from berth.errors import Conflict, InvalidParams, NotFound, ServiceUnavailable

ACTION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


@dataclass(frozen=True)
class ActionCall:
    addon_id: str
    name: str
    endpoint: ProviderEndpoint
    resource_id: str


def prepare(addon: AddOn, name: str) -> ActionCall:
    """Check the action may run; copy out what the provider call needs (made outside the
    request's transaction: a first-party provider in this process writes to the database too)."""
    if not ACTION_NAME.match(name):
        raise NotFound(f"{addon.service.name} has no action {name!r}.", resource="action")
    if addon.state != AddOnState.PROVISIONED:
        raise Conflict(f"{addon.name} is {addon.state}; actions run on provisioned add-ons.")
    return ActionCall(addon.id, name, outcomes.endpoint_of(addon.service), addon.provider_id or addon.id)


def call(client: ProviderClient, action: ActionCall, params: dict[str, Any]) -> ProviderAnswer:
    return client.action(action.endpoint, action.resource_id, action.name, params)


def apply(session: Session, action: ActionCall, answer: ProviderAnswer) -> dict[str, Any]:
    """The provider's answer: new config becomes a release on every attached app."""
    service = action.endpoint.service
    if answer.outcome == Outcome.SUCCEEDED:
        addon = session.get(AddOn, action.addon_id, populate_existing=True)
        if answer.config and addon is not None and addon.state == AddOnState.PROVISIONED:
            partner_callbacks.update_config_from_partner(
                session, addon, [{"name": key, "value": value} for key, value in answer.config.items()])
        return {"message": answer.message, "result": answer.result}
    if answer.outcome == Outcome.REFUSED:
        raise InvalidParams(answer.message or f"{service} refused {action.name}.")
    if answer.outcome == Outcome.GONE:
        raise NotFound(answer.message or f"{service} has no action {action.name!r}.", resource="action")
    raise ServiceUnavailable(f"{service} could not run {action.name} just now; try again shortly.")
