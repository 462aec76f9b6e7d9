"""Serve a `Provider` as the partner API (`specs/partner-api.md` §2): what a third-party partner
runs, so a first-party add-on is called over HTTP by the same client, and passes the same
conformance suite.

    POST   <base>/heroku/resources          provision (idempotent on `uuid`): 200 with config, or
                                            202 when the provider finishes later (§3.2)
    PUT    <base>/heroku/resources/<uuid>   plan change
    DELETE <base>/heroku/resources/<uuid>   deprovision -> 204; already gone -> 410
    POST   <base>/heroku/resources/<uuid>/actions/<name>   Berth's extension: `{"params"}` ->
                                            `{"message", "config"?, "result"?}`
    PUT    <base>/heroku/resources/<uuid>/grants/<id>      Berth's extension (manifest `requires`
                                            `grants`): credentials of the grant's own -> 200 `{"config"}`
    DELETE <base>/heroku/resources/<uuid>/grants/<id>      revoke them -> 204; none -> 410

Every call needs Basic auth `<service id>:<password>`; errors answer `{"message": …}` as
partners do, never a Platform API error id. The routes are public to Berth's own API-key check:
their credential is the manifest password, compared in constant time.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from typing import Any, Callable

from flask import Blueprint, Response, jsonify, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from berth.broker.partner_api.provider import Provider, ProviderError, ProvisionRequest
from berth.httpapi.context import public

log = logging.getLogger(__name__)
RESOURCES = "/heroku/resources"
GRANT_ID = re.compile(r"^[A-Za-z0-9._~-]{1,255}\Z")  # any OSB binding id is one


class _ProvisionBody(Schema):
    class Meta:
        unknown = EXCLUDE  # heroku_id, logplex_token and whatever comes next

    uuid = fields.String(required=True, validate=validate.Length(min=1, max=64))
    plan = fields.String(required=True, validate=validate.Length(min=1, max=100))
    region = fields.String(load_default="")
    name = fields.String(load_default="", allow_none=True)
    options = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict, allow_none=True)
    callback_url = fields.String(load_default=None, allow_none=True)
    log_input_url = fields.String(load_default=None, allow_none=True)
    log_drain_token = fields.String(load_default=None, allow_none=True)
    oauth_grant = fields.Dict(keys=fields.String(), values=fields.String(), load_default=None, allow_none=True)


class _ActionBody(Schema):
    class Meta:
        unknown = EXCLUDE

    params = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict, allow_none=True)


class _PlanChangeBody(Schema):
    class Meta:
        unknown = EXCLUDE

    plan = fields.String(required=True, validate=validate.Length(min=1, max=100))


def provider_route(view: Any) -> Any:
    """Marks a route a provider serves beside the partner API (ingest, its own API, dashboard
    pages): it authenticates its callers itself, so Berth's API-key check leaves it alone."""
    return public(view)


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"message": message}), status


def _basic_credentials() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _plan_name(plan: str, service: str) -> str:
    """`service:plan` and the bare plan name both name a plan (Berth sends the bare one)."""
    prefix = f"{service}:"
    return plan[len(prefix):] if plan.startswith(prefix) else plan


def provider_blueprint(service: str, provider: Provider, password: Callable[[], str]) -> Blueprint:
    """The partner API of `provider`, to be registered at `/providers/<service>`."""
    blueprint = Blueprint(f"provider_{service}", __name__, url_prefix=f"/providers/{service}")

    def authorized() -> bool:
        given = _basic_credentials()
        if given is None:
            return False
        user_ok = hmac.compare_digest(given[0].encode(), service.encode())
        password_ok = hmac.compare_digest(given[1].encode(), password().encode())
        return user_ok and password_ok

    def body(schema: Schema) -> dict[str, Any] | tuple[Response, int]:
        document = request.get_json(silent=True)
        if not isinstance(document, dict):
            return _error(400, "The body must be a JSON object.")
        try:
            return schema.load(document)
        except ValidationError as error:
            fields_named = ", ".join(sorted(str(name) for name in error.messages))
            return _error(422, f"Invalid fields: {fields_named}.")

    def answer_failure(error: ProviderError) -> tuple[Response, int]:
        return _error(error.status, error.message)

    @blueprint.post(RESOURCES)
    @public
    def provision() -> Any:
        if not authorized():
            return _error(401, "Invalid credentials.")
        loaded = body(_ProvisionBody())
        if isinstance(loaded, tuple):
            return loaded
        options = {str(k): v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
                   for k, v in (loaded["options"] or {}).items()}
        try:
            made = provider.provision(ProvisionRequest(
                uuid=loaded["uuid"], plan=_plan_name(loaded["plan"], service), region=loaded["region"],
                name=loaded["name"] or "", options=options, callback_url=loaded["callback_url"],
                log_input_url=loaded["log_input_url"], log_drain_token=loaded["log_drain_token"],
                oauth_grant=loaded["oauth_grant"]))
        except ProviderError as error:
            return answer_failure(error)
        if made.accepted:  # config follows through the partner endpoints
            return jsonify({"id": made.id, "message": made.message or "Provisioning; ready shortly."}), 202
        document: dict[str, Any] = {"id": made.id, "config": made.config}
        if made.message:
            document["message"] = made.message
        if made.log_drain_url:
            document["log_drain_url"] = made.log_drain_url
        return jsonify(document), 200

    @blueprint.put(f"{RESOURCES}/<uuid>")
    @public
    def change_plan(uuid: str) -> Any:
        if not authorized():
            return _error(401, "Invalid credentials.")
        loaded = body(_PlanChangeBody())
        if isinstance(loaded, tuple):
            return loaded
        try:
            config = provider.change_plan(uuid, _plan_name(loaded["plan"], service))
        except ProviderError as error:
            return answer_failure(error)
        document: dict[str, Any] = {"message": f"Plan changed to {loaded['plan']}."}
        if config:
            document["config"] = config
        return jsonify(document), 200

    @blueprint.post(f"{RESOURCES}/<uuid>/actions/<name>")
    @public
    def action(uuid: str, name: str) -> Any:
        if not authorized():
            return _error(401, "Invalid credentials.")
        run = getattr(provider, "action", None)
        if run is None:
            return _error(404, f"{service} has no actions.")
        loaded = body(_ActionBody())
        if isinstance(loaded, tuple):
            return loaded
        try:
            done = run(uuid, name, loaded["params"] or {})
        except ProviderError as error:
            return answer_failure(error)
        document: dict[str, Any] = {"message": done.message or f"{name}: done."}
        if done.config:
            document["config"] = done.config
        if done.result is not None:
            document["result"] = done.result
        return jsonify(document), 200

    @blueprint.put(f"{RESOURCES}/<uuid>/grants/<grant_id>")
    @public
    def grant(uuid: str, grant_id: str) -> Any:
        if not authorized():
            return _error(401, "Invalid credentials.")
        make = getattr(provider, "grant", None)
        if make is None:
            return _error(404, f"{service} has no grants.")
        if not GRANT_ID.match(grant_id):
            return _error(422, "A grant id is 1 to 255 letters, digits, '.', '_', '~' or '-'.")
        try:
            config = make(uuid, grant_id)
        except ProviderError as error:
            return answer_failure(error)
        return jsonify({"config": config}), 200

    @blueprint.delete(f"{RESOURCES}/<uuid>/grants/<grant_id>")
    @public
    def revoke(uuid: str, grant_id: str) -> Any:
        if not authorized():
            return _error(401, "Invalid credentials.")
        remove = getattr(provider, "revoke", None)
        if remove is None:
            return _error(404, f"{service} has no grants.")
        try:
            removed = remove(uuid, grant_id)
        except ProviderError as error:
            return answer_failure(error)
        return ("", 204) if removed else _error(410, "That grant is already gone.")

    @blueprint.delete(f"{RESOURCES}/<uuid>")
    @public
    def deprovision(uuid: str) -> Any:
        if not authorized():
            return _error(401, "Invalid credentials.")
        try:
            removed = provider.deprovision(uuid)
        except ProviderError as error:
            return answer_failure(error)
        return ("", 204) if removed else _error(410, "That resource is already gone.")

    return blueprint
