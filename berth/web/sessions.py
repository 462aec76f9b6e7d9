"""Browser sessions: a random token in the (signed, HttpOnly, SameSite) cookie whose SHA-256 is
a row here, so signing out, or deleting the account, ends it everywhere at once. The sign-in
throttle, shared with the API's email:password, is berth.auth's."""
from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from berth.accounts import Account
from berth.crypto import hash_token
from berth.db import utcnow
from berth.web.models import WebSession

SESSION_LIFETIME = timedelta(days=14)


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



__all__ = ["SESSION_LIFETIME", "account_id_for", "end_expired_sessions", "end_session", "start_session"]
