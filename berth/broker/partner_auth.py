"""Partners' OAuth: a grant code per provision, exchanged for tokens scoped to one add-on.

Spec: partner-api.md §4.5. The exchange endpoint takes its parameters from the query string,
a form or JSON, as partners' libraries differ.
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from berth import crypto
from berth.broker.models import AddOn, AddOnState, PartnerAuthorization
from berth.db import new_id, utcnow
from berth.errors import BerthError, Unauthorized

GRANT_LIFETIME = timedelta(minutes=5)
ACCESS_LIFETIME = timedelta(hours=8)


class InvalidGrant(BerthError):
    status, error_id = 400, "invalid_grant"


def mint_grant(session: Session, addon: AddOn) -> dict[str, str]:
    """A fresh single-use code for the provision call (a re-sent call gets a new one): one
    upsert on the add-on's row, whose tokens (if a retried call already issued some) stay."""
    code = secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + GRANT_LIFETIME
    values = {"grant_code_hash": crypto.hash_token(code), "grant_expires_at": expires_at, "updated_at": now}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = PartnerAuthorization.__table__
    upsert = dialect.insert(table).values(id=new_id(), addon_id=addon.id, created_at=now, **values)
    session.execute(upsert.on_conflict_do_update(index_elements=[table.c.addon_id], set_=values))
    return {"code": code, "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "type": "authorization_code"}


def _issue(authorization: PartnerAuthorization, *, new_refresh: bool) -> dict[str, Any]:
    access = secrets.token_urlsafe(32)
    authorization.access_token_hash = crypto.hash_token(access)
    authorization.access_expires_at = utcnow() + ACCESS_LIFETIME
    refresh = None
    if new_refresh:
        refresh = secrets.token_urlsafe(32)
        authorization.refresh_token_hash = crypto.hash_token(refresh)
    return {"access_token": access, "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "refresh_token": refresh, "token_type": "Bearer", "user_id": None, "session_nonce": None}


def exchange(session: Session, params: dict[str, str]) -> dict[str, Any]:
    grant_type, secret = params.get("grant_type"), params.get("client_secret") or ""
    if grant_type == "authorization_code":
        code_hash = crypto.hash_token(params.get("code") or "")
        authorization = session.scalar(select(PartnerAuthorization).where(
            PartnerAuthorization.grant_code_hash == code_hash))
        if authorization is None or authorization.grant_expires_at is None \
                or authorization.grant_expires_at <= utcnow():
            raise InvalidGrant("The grant code is unknown, used or expired.")
        _check_secret(authorization, secret)
        authorization.grant_code_hash, authorization.grant_expires_at = None, None  # single use
        answer = _issue(authorization, new_refresh=True)
    elif grant_type == "refresh_token":
        refresh = params.get("refresh_token") or ""
        authorization = session.scalar(select(PartnerAuthorization).where(
            PartnerAuthorization.refresh_token_hash == crypto.hash_token(refresh)))
        if authorization is None:
            raise InvalidGrant("The refresh token is unknown or revoked.")
        _check_secret(authorization, secret)
        answer = _issue(authorization, new_refresh=False)
        answer["refresh_token"] = refresh  # Berth keeps the refresh token (no rotation)
    else:
        raise InvalidGrant("grant_type must be authorization_code or refresh_token.")
    session.flush()
    return answer


def _check_secret(authorization: PartnerAuthorization, secret: str) -> None:
    expected = authorization.addon.service.client_secret
    if not expected or not crypto.same_secret(expected, secret):
        raise Unauthorized("Invalid client secret.")


def addon_for_token(session: Session, token: str) -> str | None:
    """The add-on a live partner access token reaches, if any."""
    authorization = session.scalar(select(PartnerAuthorization).where(
        PartnerAuthorization.access_token_hash == crypto.hash_token(token)))
    if authorization is None or authorization.access_expires_at is None \
            or authorization.access_expires_at <= utcnow():
        return None
    if authorization.addon.state in (AddOnState.DEPROVISIONED, AddOnState.FAILED):
        return None
    return authorization.addon_id


def revoke(session: Session, addon: AddOn) -> None:
    """Tokens die with the add-on."""
    authorization = session.scalar(select(PartnerAuthorization).where(PartnerAuthorization.addon_id == addon.id))
    if authorization is not None:
        session.delete(authorization)
