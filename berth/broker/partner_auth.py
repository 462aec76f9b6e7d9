"""Partners' OAuth: a grant code per provision, exchanged for tokens scoped to one add-on.

Spec: partner-api.md §4.5. The exchange endpoint takes its parameters from the query string,
a form or JSON, as partners' libraries differ.

A grant code is signed, not stored: `<add-on uuid>.<expiry>.<nonce>.<HMAC>` under a key derived
from the installation's secret keys, so minting one for a provision call writes nothing. It is
made single-use when it is exchanged: the add-on's authorization row remembers the expiry of
the last code exchanged (`grant_expires_at`, with that code's digest in `grant_code_hash`), and
only a code that expires later is taken. A code older than one already exchanged (an earlier
call's, resent) is refused with it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from berth import crypto
from berth.accounts import UUID_PATTERN
from berth.broker.models import AddOn, AddOnState, AddonService, PartnerAuthorization
from berth.db import new_id, utcnow
from berth.errors import BerthError, Unauthorized

GRANT_LIFETIME = timedelta(minutes=5)
ACCESS_LIFETIME = timedelta(hours=8)
GRANT_PURPOSE = "partner-oauth-grant-v1"
INVALID_CODE = "The grant code is unknown, used or expired."


class InvalidGrant(BerthError):
    status, error_id = 400, "invalid_grant"


def _signature(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint_grant(addon_id: str) -> dict[str, str]:
    """A fresh single-use code for the provision call (a re-sent call gets a new one); no write."""
    expires_at = utcnow() + GRANT_LIFETIME
    body = f"{addon_id}.{int(expires_at.timestamp() * 1_000_000)}.{secrets.token_urlsafe(16)}"
    code = f"{body}.{_signature(crypto.keyring().derived_keys(GRANT_PURPOSE)[0], body)}"
    return {"code": code, "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "type": "authorization_code"}


def _verified_code(code: str) -> tuple[str, datetime]:
    """The add-on and expiry a genuine, unexpired code names; InvalidGrant otherwise."""
    body, _, signature = code.rpartition(".")
    parts = body.split(".")
    genuine = any(hmac.compare_digest(_signature(key, body), signature)
                  for key in crypto.keyring().derived_keys(GRANT_PURPOSE))
    if not genuine or len(parts) != 3 or not UUID_PATTERN.match(parts[0]) or not parts[1].isdigit():
        raise InvalidGrant(INVALID_CODE)
    expires_at = datetime.fromtimestamp(int(parts[1]) / 1_000_000, tz=timezone.utc)
    if expires_at <= utcnow():
        raise InvalidGrant(INVALID_CODE)
    return parts[0], expires_at


def _exchange_code(session: Session, code: str, secret: str) -> dict[str, Any]:
    addon_id, expires_at = _verified_code(code)
    found = session.execute(select(AddOn.state, AddonService.client_secret)
                            .join(AddonService, AddonService.id == AddOn.service_id)
                            .where(AddOn.id == addon_id)).first()
    if found is None or found.state not in (AddOnState.PROVISIONING, AddOnState.PROVISIONED):
        raise InvalidGrant(INVALID_CODE)  # its tokens died with the add-on (`revoke`)
    _check_secret(found.client_secret, secret)
    access, refresh, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), utcnow()
    values = {"grant_code_hash": crypto.hash_token(code), "grant_expires_at": expires_at,
              "access_token_hash": crypto.hash_token(access), "access_expires_at": now + ACCESS_LIFETIME,
              "refresh_token_hash": crypto.hash_token(refresh), "updated_at": now}
    table = PartnerAuthorization.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(table).values(id=new_id(), addon_id=addon_id, created_at=now, **values)
    # One statement takes the code or finds it spent, also against a concurrent exchange of it.
    newer = table.c.grant_expires_at.is_(None) | (table.c.grant_expires_at < upsert.excluded.grant_expires_at)
    taken = session.execute(upsert.on_conflict_do_update(index_elements=[table.c.addon_id], set_=values,
                                                         where=newer).returning(table.c.id)).first()
    if taken is None:
        raise InvalidGrant(INVALID_CODE)
    return _answer(access, refresh)


def _answer(access: str, refresh: str | None) -> dict[str, Any]:
    return {"access_token": access, "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "refresh_token": refresh, "token_type": "Bearer", "user_id": None, "session_nonce": None}


def exchange(session: Session, params: dict[str, str]) -> dict[str, Any]:
    grant_type, secret = params.get("grant_type"), params.get("client_secret") or ""
    if grant_type == "authorization_code":
        return _exchange_code(session, params.get("code") or "", secret)
    if grant_type != "refresh_token":
        raise InvalidGrant("grant_type must be authorization_code or refresh_token.")
    refresh = params.get("refresh_token") or ""
    authorization = session.scalar(select(PartnerAuthorization).where(
        PartnerAuthorization.refresh_token_hash == crypto.hash_token(refresh)))
    if authorization is None:
        raise InvalidGrant("The refresh token is unknown or revoked.")
    _check_secret(authorization.addon.service.client_secret, secret)
    access = secrets.token_urlsafe(32)
    authorization.access_token_hash = crypto.hash_token(access)
    authorization.access_expires_at = utcnow() + ACCESS_LIFETIME
    session.flush()
    return _answer(access, refresh)  # Berth keeps the refresh token (no rotation)


def _check_secret(expected: str | None, secret: str) -> None:
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
