"""`/osb/v2/...`: the Open Service Broker endpoints (HTTP only; the work is in `instances`,
`bindings` and `catalog`). Platforms authenticate with their own Basic credential, not an API
key, so the views are outside the Platform API's authentication and answer OSB error bodies."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.orm import lazyload
from werkzeug.exceptions import HTTPException

from berth.broker.api.addons import commit_and_wait, provider_client
from berth.broker.osb import bindings, catalog, clients, instances, protocol, schemas
from berth.broker.osb.instances import Outcome
from berth.broker.osb.models import OsbClient
from berth.broker.osb.protocol import OsbError
from berth.config import Settings
from berth.errors import BerthError
from berth.httpapi.context import database, db_session, public
from berth.jobs.wakeup import nudge_workers

blueprint = Blueprint("osb", __name__, url_prefix="/osb")
INSTANCE = "/v2/service_instances/<instance_id>"
BINDING = INSTANCE + "/service_bindings/<binding_id>"


def _settings() -> Settings:
    return current_app.config["BERTH_SETTINGS"]


# Its owner's account loads only when a new app is made for it (`instances.context_app`).
_CLIENT_ONLY = [lazyload(OsbClient.owner)]


def _client() -> OsbClient:
    """The authenticated platform, in the request's session."""
    client = db_session().get(OsbClient, g.osb_client_id, options=_CLIENT_ONLY)
    if client is None:  # revoked since `_admit`
        raise OsbError(401, "This platform's credential was revoked.")
    return client


@blueprint.before_request
def _admit() -> None:
    """401, then 412, then the identity headers (400): before anything reads the body."""
    sent = protocol.basic_credentials(request.headers.get("Authorization"))
    client = None
    if sent is not None:
        with database().session(write=False) as session:
            client = clients.authenticate(session, sent.username, sent.password)
            if client is not None:
                g.osb_client_id, g.osb_client_username = client.id, client.username
    if client is None:
        raise OsbError(401, "Send the platform's Basic credentials (python -m berth.admin create-osb-client).")
    g.osb_version = protocol.parse_version(request.headers.get("X-Broker-API-Version"))
    protocol.log_identity()


@blueprint.after_request
def _echo_identity(response: Response) -> Response:
    identity = protocol.request_identity()
    if identity is not None:
        response.headers["X-Broker-API-Request-Identity"] = identity
    return response


@blueprint.errorhandler(OsbError)
def _osb_error(error: OsbError) -> Response:
    return protocol.render(error)


@blueprint.errorhandler(BerthError)
def _berth_error(error: BerthError) -> Response:
    return protocol.render(OsbError(error.status, error.message))


@blueprint.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return protocol.render(OsbError(error.code or 500, error.description or "Request refused."))


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    # The traceback goes to the log under the request id; the platform gets no internals.
    protocol.log.exception("unhandled error in %s %s (request %s)", request.method, request.path, g.get("request_id"))
    return protocol.render(OsbError(500, f"Internal error; quote request id {g.get('request_id')} when reporting it."))


def _public(view: Callable[..., Any]) -> Callable[..., Any]:
    return public(view)  # the Platform API's key check is skipped: `_admit` checks the platform's


def _ids(instance_id: str, binding_id: str | None = None) -> None:
    protocol.check_id(instance_id, "instance id")
    if binding_id is not None:
        protocol.check_id(binding_id, "binding id")


def _settle(outcome: Outcome, settle: Callable[[Outcome], Outcome]) -> Outcome:
    """Commit, let the worker do it (a bounded wait), then the final answer, whose own writes (a
    late provision cancelled) are committed whatever its status."""
    if outcome.wait_on is None:
        if outcome.status == 202:  # an operation accepted without a wait: the worker takes it now
            db_session().commit()
            nudge_workers(_settings().data_dir)
        return outcome
    addon_id, operation_id = outcome.wait_on
    looked = commit_and_wait(addon_id, operation_id, seconds=outcome.wait_seconds)
    try:
        return settle(replace(outcome, looked=looked))
    finally:
        db_session().commit()


@blueprint.get("/v2/catalog")
@_public
def get_catalog() -> Any:
    return jsonify(catalog.catalog(db_session(), _settings()))


@blueprint.put(INSTANCE)
@_public
def provision(instance_id: str) -> Any:
    _ids(instance_id)
    params = schemas.load(schemas.ProvisionSchema(), protocol.json_body())
    session, settings = db_session(), _settings()
    outcome = instances.provision(session, settings, _client(), instance_id, params, protocol.flag("accepts_incomplete"))
    outcome = _settle(outcome, lambda waited: instances.settle_provision(session, settings, instance_id, waited))
    return jsonify(schemas.dump(schemas.ProvisionAnswerSchema, outcome.body)), outcome.status


@blueprint.patch(INSTANCE)
@_public
def update(instance_id: str) -> Any:
    _ids(instance_id)
    params = schemas.load(schemas.UpdateSchema(), protocol.json_body())
    session = db_session()
    outcome = instances.update(session, _settings(), _client(), instance_id, params, protocol.flag("accepts_incomplete"))
    outcome = _settle(outcome, lambda waited: instances.settle_update(session, instance_id, waited))
    return jsonify(schemas.dump(schemas.UpdateAnswerSchema, outcome.body)), outcome.status


@blueprint.delete(INSTANCE)
@_public
def deprovision(instance_id: str) -> Any:
    _ids(instance_id)
    schemas.load(schemas.DeleteQuerySchema(), request.args.to_dict())
    session = db_session()
    outcome = instances.deprovision(session, _settings(), _client(), instance_id, protocol.flag("accepts_incomplete"))
    outcome = _settle(outcome, lambda waited: instances.settle_deprovision(session, instance_id, waited))
    return jsonify(schemas.dump(schemas.OperationAnswerSchema, outcome.body)), outcome.status


@blueprint.get(INSTANCE)
@_public
def fetch_instance(instance_id: str) -> Any:
    _ids(instance_id)
    found = instances.fetch(db_session(), _settings(), _client(), instance_id)
    return jsonify(schemas.dump(schemas.InstanceSchema, found))


def _polled(state: dict[str, Any]) -> Response:
    response = jsonify(schemas.dump(schemas.LastOperationSchema, state))
    if state["state"] == instances.IN_PROGRESS and protocol.at_least(15):
        response.headers["Retry-After"] = str(int(_settings().osb_retry_after_seconds))
    return response


@blueprint.get(INSTANCE + "/last_operation")
@_public
def instance_last_operation(instance_id: str) -> Any:
    _ids(instance_id)
    return _polled(instances.last_operation(db_session(), _client(), instance_id))


@blueprint.put(BINDING)
@_public
def bind(instance_id: str, binding_id: str) -> Any:
    _ids(instance_id, binding_id)
    params = schemas.load(schemas.BindSchema(), protocol.json_body())
    protocol.flag("accepts_incomplete")  # binds are synchronous: the flag is allowed, not needed
    session, client = db_session(), _client()
    outcome = bindings.bind(session, client, instance_id, binding_id, params)
    if isinstance(outcome, bindings.GrantCall):
        grant = outcome
        session.commit()  # hold no lock while the provider works: it may be in this very process
        granted = bindings.make_grant(provider_client(), grant)
        try:
            outcome = bindings.bind(session, client, instance_id, binding_id, params, granted=granted)
        except OsbError:  # the instance changed meanwhile: no binding holds these credentials
            session.rollback()
            bindings.revoke_grant(provider_client(), grant)
            raise
        assert not isinstance(outcome, bindings.GrantCall)
    return jsonify(schemas.dump(schemas.BindingSchema, outcome.body)), outcome.status


@blueprint.delete(BINDING)
@_public
def unbind(instance_id: str, binding_id: str) -> Any:
    _ids(instance_id, binding_id)
    schemas.load(schemas.DeleteQuerySchema(), request.args.to_dict())
    session = db_session()
    outcome = bindings.unbind(session, _client(), instance_id, binding_id)
    if isinstance(outcome, bindings.GrantCall):
        session.commit()  # as bind: no lock held while the provider revokes
        bindings.revoke_grant(provider_client(), outcome)
        outcome = bindings.unbind(session, _client(), instance_id, binding_id, revoked=True)
        assert not isinstance(outcome, bindings.GrantCall)
    return jsonify(schemas.dump(schemas.OperationAnswerSchema, outcome.body)), outcome.status


@blueprint.get(BINDING)
@_public
def fetch_binding(instance_id: str, binding_id: str) -> Any:
    _ids(instance_id, binding_id)
    return jsonify(schemas.dump(schemas.BindingSchema, bindings.fetch(db_session(), _client(), instance_id, binding_id)))


@blueprint.get(BINDING + "/last_operation")
@_public
def binding_last_operation(instance_id: str, binding_id: str) -> Any:
    _ids(instance_id, binding_id)
    return _polled(bindings.last_operation(db_session(), _client(), instance_id, binding_id))


@blueprint.route("/<path:_rest>", methods=["GET", "PUT", "PATCH", "POST", "DELETE"])
@_public
def unknown(_rest: str) -> Any:
    """Anything else under /osb: an OSB error body, never the Platform API's."""
    raise OsbError(404, f"No OSB endpoint {request.method} {request.path}.")
