"""The log store's own routes, beside its partner API (all under /providers/logs):

    POST /drains/<uuid>        the drain: logplex frames, Basic auth `drain:<ingest secret>` -> 204
    GET  /v1/<uuid>/lines      search: ?q= &since= &until= &source= &dyno= &limit=, Basic auth
                               `token:<search token>` (both are in LOGS_URL) -> {"lines": [...]}
    POST /sso                  Berth's SSO form (partner API §4.4) -> 302 to the dashboard, else 403
    GET  /dashboard/<uuid>     the search page, for the browser the SSO signed in
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from berth.addons.logging.provider import MAX_RESULTS, LogsProvider, Query, parse_time
from berth.addons.secrets import derived_secret
from berth.broker.partner_api.provider import ProviderError
from berth.broker.partner_api.server import provider_route
from berth.broker.partner_api.sso import verify_sso

COOKIE = "berth_logs_dashboard"
DASHBOARD_HOURS = 8
LOGPLEX_TYPE = "application/logplex-1"


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"message": message}), status


def logs_blueprint(provider: LogsProvider) -> Blueprint:
    blueprint = Blueprint("provider_logs_routes", __name__, url_prefix="/providers/logs",
                          template_folder="templates")
    signer = URLSafeTimedSerializer(derived_secret(provider.settings, "logs-dashboard"), salt="dashboard")

    def basic(user: str) -> str | None:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username != user:
            return None
        return auth.password or ""

    def query_from(args: Any) -> Query:
        try:
            limit = int(args.get("limit") or 100)
            since, until = parse_time(args.get("since")), parse_time(args.get("until"))
        except ValueError:
            raise ProviderError("since and until are ISO 8601 times; limit is a number.", 400) from None
        if not 1 <= limit <= MAX_RESULTS:
            raise ProviderError(f"limit is between 1 and {MAX_RESULTS}.", 400)
        return Query(text=args.get("q") or None, since=since, until=until, source=args.get("source") or None,
                     dyno=args.get("dyno") or None, limit=limit)

    @blueprint.post("/drains/<uuid>")
    @provider_route
    def drain(uuid: str) -> Any:
        secret = basic("drain")
        if secret is None:
            return _error(401, "Invalid credentials.")
        if request.mimetype != LOGPLEX_TYPE:
            return _error(415, f"Send {LOGPLEX_TYPE}.")
        try:
            provider.ingest(uuid, secret, request.headers.get("Logplex-Drain-Token", ""), request.get_data())
        except ProviderError as error:
            return _error(error.status, error.message)
        return "", 204

    @blueprint.get("/v1/<uuid>/lines")
    @provider_route
    def lines(uuid: str) -> Any:
        token = basic("token")
        if token is None or not provider.check_search_token(uuid, token):
            return _error(401, "Invalid credentials.")
        try:
            found = provider.search(uuid, query_from(request.args))
        except ProviderError as error:
            return _error(error.status, error.message)
        return jsonify({"lines": [{"time": line.logged_at.isoformat(), "source": line.source,
                                   "process": line.process, "message": line.message} for line in found]})

    @blueprint.post("/sso")
    @provider_route
    def sso() -> Any:
        params = {key: value for key, value in request.form.items()}
        uuid = params.get("resource_id", "")
        if not verify_sso(params, provider.sso_salt()) or not provider.exists(uuid):
            return _error(403, "This sign-in link is not valid (or no longer).")
        response = redirect(f"/providers/logs/dashboard/{uuid}", code=302)
        response.set_cookie(COOKIE, signer.dumps(uuid), max_age=DASHBOARD_HOURS * 3600, httponly=True,
                            samesite="Lax", secure=provider.settings.api_url.startswith("https://"),
                            path="/providers/logs")
        return response

    @blueprint.get("/dashboard/<uuid>")
    @provider_route
    def dashboard(uuid: str) -> Any:
        try:
            signed_for = signer.loads(request.cookies.get(COOKIE, ""), max_age=DASHBOARD_HOURS * 3600)
        except BadSignature:
            signed_for = None
        if signed_for != uuid:
            return _error(403, "Open the logs add-on from Berth to sign in.")
        error, found = None, []
        try:
            found = provider.search(uuid, query_from(request.args))
        except ProviderError as problem:
            error = problem.message
        return render_template("logs_dashboard.html", lines=found, error=error, args=request.args)

    return blueprint
