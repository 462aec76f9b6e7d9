"""Single sign-on tokens (`specs/partner-api.md` §4.4).

Berth's SSO gateway signs with these; `verify_sso` is the provider side, published for partners
written in Python (Berth's first-party add-ons use it too). The token formulas are Heroku's: plain
SHA digests over `:`-joined fields, not HMACs, so that existing providers verify them unchanged.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping

WINDOW_SECONDS = 300  # Berth's choice (§4.4): accept a timestamp up to 5 minutes either side


def resource_token(uuid: str, salt: str, timestamp: int | str) -> str:
    """`sha1_hex(uuid:salt:timestamp)`: proves the holder was sent by the platform for `uuid`."""
    return hashlib.sha1(f"{uuid}:{salt}:{timestamp}".encode()).hexdigest()


def user_scoped_resource_token(uuid: str, salt: str, timestamp: int | str, user_id: str, email: str) -> str:
    """`sha256_hex(uuid:salt:timestamp:user_id:email)`: also binds the user (preferred, newer)."""
    return hashlib.sha256(f"{uuid}:{salt}:{timestamp}:{user_id}:{email}".encode()).hexdigest()


def sso_params(uuid: str, salt: str, *, user_id: str, email: str, app: str, context_app: str | None = None,
               timestamp: int | None = None) -> dict[str, str]:
    """The v3 form fields the gateway POSTs to the provider's `sso_url`, stamped now by default."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "resource_id": uuid,
        "timestamp": stamp,
        "resource_token": resource_token(uuid, salt, stamp),
        "user_scoped_resource_token": user_scoped_resource_token(uuid, salt, stamp, user_id, email),
        "user_id": user_id,
        "email": email,
        "app": app,
        "context_app": context_app or app,
    }


def _same(given: str, expected: str) -> bool:
    # Constant time, and hex case does not matter; non-ASCII input simply does not match.
    try:
        return hmac.compare_digest(given.strip().lower().encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


def verify_sso(params: Mapping[str, str], salt: str, *, now: float | None = None,
               window: int = WINDOW_SECONDS) -> bool:
    """True when `params` (the POSTed form) carry a fresh timestamp and valid token(s).

    Every token present must verify and at least one must be present, so a forged
    `user_scoped_resource_token` cannot ride along with a valid `resource_token`.
    """
    uuid = params.get("resource_id") or ""
    stamp = params.get("timestamp") or ""
    if not uuid or not stamp.isascii() or not stamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > window:
        return False
    checked = False
    given = params.get("resource_token")
    if given is not None:
        if not _same(given, resource_token(uuid, salt, stamp)):
            return False
        checked = True
    given = params.get("user_scoped_resource_token")
    if given is not None:
        user_id, email = params.get("user_id") or "", params.get("email") or ""
        if not _same(given, user_scoped_resource_token(uuid, salt, stamp, user_id, email)):
            return False
        checked = True
    return checked
