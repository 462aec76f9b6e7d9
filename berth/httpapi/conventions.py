"""Installs the Platform API conventions on the Flask app: authentication, rate limits,
Request-Id, one transaction per request, and JSON errors for everything (never HTML)."""
from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from berth.auth import (
    Credentials,
    SignInThrottled,
    authenticate_key,
    authenticate_password,
    parse_authorization_header,
)
from berth.crypto import hash_token
from berth.errors import (
    BadRequest,
    BerthError,
    InternalError,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)
from berth.hooks import PARTNER_TOKEN_ADDON, Hooks
from berth.httpapi import ratelimit
from berth.httpapi.context import READ_METHODS, database

log = logging.getLogger(__name__)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
NOT_FOUND_MESSAGE = ("The requested API endpoint was not found. Are you using the right HTTP verb "
                     "(i.e. `GET` vs. `POST`), and did you specify your intended version with the "
                     "`Accept` header?")


def install(app: Flask) -> None:
    app.before_request(_assign_request_id)
    app.before_request(_refuse_nul_in_path)
    app.before_request(_authenticate)
    app.after_request(_finish)
    app.teardown_request(_close_session)
    app.register_error_handler(BerthError, render_error)
    app.register_error_handler(HTTPException, _render_http_exception)
    app.register_error_handler(Exception, _render_unexpected)


def _assign_request_id() -> None:
    # The Heroku CLI sends a growing comma-joined list: echo its first element only.
    sent = (request.headers.get("Request-Id") or "").split(",")[0].strip()
    g.request_id = sent if _SAFE_REQUEST_ID.match(sent) else str(uuid.uuid4())


def _refuse_nul_in_path() -> None:
    # No resource name or id can contain NUL, and PostgreSQL refuses it in a query.
    if "\x00" in request.path:
        raise BerthError(NOT_FOUND_MESSAGE, error_id="not_found", status=404)


def _authenticate() -> None:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is None or getattr(view, "berth_public", False):
        return  # unknown routes fall through to a JSON 404/405
    credentials = parse_authorization_header(request.headers.get("Authorization"))
    capacity = current_app.config["BERTH_SETTINGS"].rate_limit_per_hour
    cost = 0 if getattr(view, "berth_free", False) else 1
    token = credentials and (credentials.token if credentials.token is not None
                             else credentials.password)
    partner = getattr(view, "berth_partner", None)
    if partner == "only":
        if not (token and _authenticate_partner(token)):
            raise Unauthorized("Invalid partner access token.")
        return
    admitted = _admit(view, token, capacity, cost) if token else None
    if admitted is not None:  # the common case: one statement, no session opened
        g.account_id, g.rate_remaining = admitted
        g.password_login = False
        return
    if partner == "also" and token and _authenticate_partner(token):
        return
    _authenticate_slowly(view, credentials, capacity, cost)


def _admit(view: object, token: str, capacity: int, cost: int) -> tuple[str, int] | None:
    """The one-statement admission; for an `admitted_read` view it also fetches the view's rows."""
    choose = getattr(view, "berth_admitted_read", None)
    if choose is None:
        return ratelimit.admit(database(), hash_token(token), capacity, cost)
    read, params = choose(**(request.view_args or {}))
    found = read.run_admitted(database(), hash_token(token), capacity, cost, params)
    if found is None:
        return None
    account_id, remaining, g.admitted_rows = found
    return account_id, remaining


def _authenticate_partner(token: str) -> bool:
    """A partner's OAuth access token: it reaches one add-on (see context.partner_access)."""
    hooks: Hooks = current_app.extensions["berth.hooks"]
    if not hooks.answers(PARTNER_TOKEN_ADDON):  # a platform without a broker has no partners
        return False
    with database().session(write=False) as session:
        addon_id = hooks.ask(PARTNER_TOKEN_ADDON, session, token)
    if addon_id is None:
        return False
    g.partner_addon_id = addon_id
    return True


def _authenticate_slowly(view: object, credentials: Credentials | None, capacity: int,
                         cost: int) -> None:
    """Unknown or expired key, email:password, or an empty or missing bucket: find out which."""
    with database().session(write=False) as session:
        try:
            account, _key = authenticate_key(session, credentials)
            g.password_login = False
        except Unauthorized:
            found = (authenticate_password(database(), credentials, request.remote_addr or "unknown")
                     if getattr(view, "berth_password_login", False) else None)
            if found is None:
                raise
            account, g.password_login = found, True
    g.account, g.account_id = account, account.id
    allowed, g.rate_remaining = ratelimit.consume(database(), account.id, capacity, cost)
    if not allowed:
        raise RateLimited()


def _finish(response: Response) -> Response:
    session = g.pop("db_session", None)
    if session is not None:
        try:
            if request.method in READ_METHODS:
                pass  # reads run in autocommit mode: nothing to commit or roll back
            elif response.status_code < 400:
                session.commit()
            else:
                session.rollback()
        except Exception:  # a failed commit must not answer success
            log.exception("commit failed (request %s)", g.get("request_id"))
            session.rollback()
            response = render_error(InternalError("The change could not be saved. Please retry."))
        finally:
            session.close()
    response.headers["Request-Id"] = g.get("request_id") or str(uuid.uuid4())
    if g.get("rate_remaining") is not None:
        response.headers["RateLimit-Remaining"] = str(g.rate_remaining)
    return response


def _close_session(_error: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def render_error(error: BerthError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if isinstance(error, SignInThrottled):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _render_http_exception(error: HTTPException) -> Response:
    code = error.code or 500
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        mapped: BerthError = PayloadTooLarge(f"Request body is too large; the limit is {limit} bytes.")
    elif code == 404:
        mapped = BerthError(NOT_FOUND_MESSAGE, error_id="not_found", status=404)
    elif code == 405:
        mapped = MethodNotAllowed(f"Method {request.method} is not allowed on {request.path}.")
    elif code < 500:
        mapped = BadRequest(error.description or "Bad request.", status=code)
    else:
        mapped = InternalError("Internal server error.", status=code)
    response = render_error(mapped)
    if code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return response


def _render_unexpected(error: Exception) -> Response:
    # The traceback goes to the log under the request id; the client gets no internals.
    log.exception("unhandled error (request %s)", g.get("request_id"))
    return render_error(InternalError(
        f"Internal server error. Please quote request id {g.get('request_id')} when reporting it."))
