"""Service functions behind signing in: browser sessions and the sign-in throttle.

A session is a random token in the (signed, HttpOnly, SameSite) cookie whose SHA-256 is a row
here, so signing out, or deleting the account, ends it everywhere at once. The throttle counts
failed sign-ins per email address and per client address in a fixed window: past the limit,
sign-in is refused (even with the right password) until the window ends.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from berth.accounts import Account
from berth.crypto import hash_token
from berth.db import utcnow
from berth.web.models import LoginThrottle, WebSession

SESSION_LIFETIME = timedelta(days=14)
THROTTLE_WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL = 5
FAILURES_PER_ADDRESS = 20


def start_session(session: Session, account: Account) -> str:
    """A new signed-in session; returns the token for the cookie (never stored in clear)."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=hash_token(token), account_id=account.id,
                           expires_at=utcnow() + SESSION_LIFETIME))
    session.flush()
    return token


def account_id_for(session: Session, token: str) -> str | None:
    """The signed-in account's id, or None for an unknown, ended or expired session."""
    row = session.get(WebSession, hash_token(token))
    if row is None or row.expires_at <= utcnow():
        return None
    return row.account_id


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == hash_token(token)))


def end_expired_sessions(session: Session) -> int:
    result = session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
    return result.rowcount or 0  # type: ignore[attr-defined]


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _limits(email: str, address: str) -> list[tuple[str, int]]:
    return [(_key("email", email.strip().lower()), FAILURES_PER_EMAIL),
            (_key("ip", address), FAILURES_PER_ADDRESS)]


def seconds_until_allowed(session: Session, email: str, address: str) -> int:
    """0 when a sign-in may be tried now, else how long until the window ends."""
    now = utcnow()
    wait = 0
    for key, limit in _limits(email, address):
        row = session.get(LoginThrottle, key)
        if row is None or row.window_started_at + THROTTLE_WINDOW <= now or row.failures < limit:
            continue
        wait = max(wait, int((row.window_started_at + THROTTLE_WINDOW - now).total_seconds()) + 1)
    return wait


def record_failure(session: Session, email: str, address: str) -> None:
    now = utcnow()
    for key, _limit in _limits(email, address):
        row = session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update())
        if row is None:
            session.add(LoginThrottle(key=key, failures=1, window_started_at=now))
        elif row.window_started_at + THROTTLE_WINDOW <= now:
            row.failures, row.window_started_at = 1, now
        else:
            row.failures += 1
    session.flush()


def forget_failures(session: Session, email: str) -> None:
    """A successful sign-in clears its email's count (not the address's: one good password
    must not reset guessing at other accounts from the same place)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == _key("email", email.strip().lower())))


__all__ = ["FAILURES_PER_ADDRESS", "FAILURES_PER_EMAIL", "SESSION_LIFETIME", "account_id_for",
           "end_expired_sessions", "end_session", "forget_failures", "record_failure",
           "seconds_until_allowed", "start_session"]
