"""/account, /users/{ref}, /oauth/authorizations, /account/rate-limits."""
from __future__ import annotations

from typing import Any

from flask import current_app, request

from berth import accounts
from berth.db import utcnow
from berth.errors import NotFound
from berth.httpapi import ratelimit
from berth.httpapi.body import load
from berth.httpapi.context import (
    current_account,
    database,
    db_session,
    free,
    logged_in_with_password,
    password_login,
)
from berth.httpapi.openapi import describe
from berth.httpapi.pagination import paginate
from berth.platform.api import blueprint
from berth.platform.schemas import (
    AccountSchema,
    AccountUpdateSchema,
    AuthorizationCreateSchema,
    AuthorizationSchema,
    AuthorizationUpdateSchema,
    RateLimitSchema,
)

Reply = Any


@blueprint.get("/account")
@describe(summary="The caller's account", response=AccountSchema)
def show_account() -> Reply:
    return AccountSchema().dump(current_account())


@blueprint.get("/users/<ref>")
@describe(summary="An account by email, id or ~ (only the caller's own)", response=AccountSchema)
def show_user(ref: str) -> Reply:
    return AccountSchema().dump(accounts.get_account(db_session(), current_account(), ref))


@blueprint.patch("/account")
@describe(summary="Update the caller's account", request=AccountUpdateSchema, response=AccountSchema)
def update_account() -> Reply:
    changes = load(AccountUpdateSchema())
    return AccountSchema().dump(accounts.update_account(db_session(), current_account(), changes))


@blueprint.get("/account/rate-limits")
@free
@describe(summary="Remaining API calls in the caller's rate budget", response=RateLimitSchema)
def show_rate_limits() -> Reply:
    capacity = current_app.config["BERTH_SETTINGS"].rate_limit_per_hour
    left = ratelimit.remaining(database(), current_account().id, capacity)
    return RateLimitSchema().dump({"remaining": left})


@blueprint.post("/oauth/authorizations")
@password_login
@describe(summary="Mint a new API key (Basic email:password, or an existing key)",
          request=AuthorizationCreateSchema, response=AuthorizationSchema, status=201)
def create_authorization() -> Reply:
    params = load(AuthorizationCreateSchema())
    account = current_account()
    if logged_in_with_password():  # as `heroku login -i` does
        account.last_login = utcnow()
    created = accounts.create_authorization(db_session(), account, **params)
    return AuthorizationSchema().dump(created), 201


@blueprint.get("/oauth/authorizations")
@describe(summary="The caller's API keys (tokens redacted)", response=AuthorizationSchema, many=True)
def list_authorizations() -> Reply:
    model = accounts.Authorization
    page = paginate(db_session(), accounts.list_authorizations_query(current_account()),
                    {"id": model.id, "created_at": model.created_at, "updated_at": model.updated_at},
                    request.headers.get("Range"), tie_breaker=model.id)
    return page.respond(AuthorizationSchema(many=True).dump(page.rows))


@blueprint.get("/oauth/authorizations/<ref>")
@describe(summary="One API key by id, or ~ for the default key", response=AuthorizationSchema)
def show_authorization(ref: str) -> Reply:
    return AuthorizationSchema().dump(accounts.get_authorization(db_session(), current_account(), ref))


@blueprint.patch("/oauth/authorizations/<ref>")
@describe(summary="Change an API key's description", request=AuthorizationUpdateSchema,
          response=AuthorizationSchema)
def update_authorization(ref: str) -> Reply:
    params = load(AuthorizationUpdateSchema())
    auth = accounts.get_authorization(db_session(), current_account(), ref)
    auth.description = params["description"]
    db_session().flush()
    return AuthorizationSchema().dump(auth)


@blueprint.delete("/oauth/authorizations/<ref>")
@describe(summary="Revoke an API key", response=AuthorizationSchema)
def revoke_authorization(ref: str) -> Reply:
    session = db_session()
    auth = accounts.get_authorization(session, current_account(), ref)
    session.delete(auth)
    session.flush()
    return AuthorizationSchema().dump(auth)


@blueprint.post("/oauth/authorizations/<ref>/actions/regenerate-tokens")
@describe(summary="Replace an API key's token", response=AuthorizationSchema)
def regenerate_authorization(ref: str) -> Reply:
    session = db_session()
    auth = accounts.get_authorization(session, current_account(), ref)
    return AuthorizationSchema().dump(accounts.regenerate_token(session, auth))


@blueprint.delete("/oauth/sessions/<ref>")
def delete_session(ref: str) -> Reply:
    # The Heroku CLI's logout calls this first; Berth has no OAuth sessions to end.
    raise NotFound("Couldn't find that session.", resource="session")
