"""Endpoints partners call: the OAuth token exchange, their add-on's config and actions."""
from __future__ import annotations

from typing import Any

from flask import request

from berth.broker import finders, partner_auth, partner_callbacks
from berth.broker.api import blueprint
from berth.broker.schemas import AddOnSchema, ConfigItemsSchema, ConfigUpdateSchema
from berth.errors import BadRequest
from berth.httpapi.body import json_body, load
from berth.httpapi.context import (
    current_account_id,
    current_partner_addon_id,
    db_session,
    partner_access,
    partner_only,
    public,
)
from berth.httpapi.openapi import describe

Reply = Any


@blueprint.post("/oauth/token")
@public
def oauth_token() -> Reply:
    """Grant exchange and refresh (spec §4.5): query string, form or JSON parameters."""
    params: dict[str, str] = {k: v for k, v in request.args.items()}
    params.update({k: v for k, v in request.form.items()})
    if request.is_json:
        body = json_body()
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object.")
        params.update({k: str(v) for k, v in body.items() if isinstance(v, (str, int))})
    return partner_auth.exchange(db_session(), params)


def _addon_for_caller(ref: str) -> Any:
    partner = current_partner_addon_id()
    session = db_session()
    if partner is not None:
        return partner_callbacks.partner_addon(session, partner, ref)
    return finders.get_addon(session, current_account_id(), ref)


@blueprint.get("/addons/<addon_ref>/config")
@partner_access
@describe(summary="An add-on's config, with the provider's names", response=ConfigItemsSchema, many=True)
def show_addon_config(addon_ref: str) -> Reply:
    return ConfigItemsSchema(many=True).dump(partner_callbacks.config_items(_addon_for_caller(addon_ref)))


@blueprint.patch("/addons/<addon_ref>/config")
@partner_only
@describe(summary="The partner sets config: released to every attached app (staged while provisioning)",
          request=ConfigUpdateSchema, response=ConfigItemsSchema, many=True)
def update_addon_config(addon_ref: str) -> Reply:
    items = load(ConfigUpdateSchema())["config"]
    addon = partner_callbacks.update_config_from_partner(db_session(), _addon_for_caller(addon_ref), items)
    return ConfigItemsSchema(many=True).dump(partner_callbacks.config_items(addon))


@blueprint.post("/addons/<addon_ref>/actions/provision")
@partner_only
@describe(summary="The partner finishes an asynchronous provision", response=AddOnSchema)
def partner_provisioned(addon_ref: str) -> Reply:
    return AddOnSchema().dump(partner_callbacks.complete_provision(db_session(), _addon_for_caller(addon_ref)))


@blueprint.post("/addons/<addon_ref>/actions/deprovision")
@partner_only
@describe(summary="The partner finishes (or abandons) the resource", response=AddOnSchema)
def partner_deprovisioned(addon_ref: str) -> Reply:
    return AddOnSchema().dump(partner_callbacks.complete_deprovision(db_session(), _addon_for_caller(addon_ref)))
