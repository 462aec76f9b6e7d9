"""Log input tokens: who may write into an app's stream over HTTP (`log_input_url`).

A token (`t.<uuid>`) belongs to one app and writes as one `source` (an add-on's name). Tokens are
looked up by their SHA-256, and kept encrypted because the URL is shown again (on the attachment).
"""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from berth.crypto import hash_token
from berth.platform.logs.models import LogDrain, LogInputToken
from berth.platform.models import App


def issue_input_token(session: Session, app: App, *, source: str, owner: str | None) -> str:
    token = f"t.{uuid.uuid4()}"
    session.add(LogInputToken(app_id=app.id, token=token, token_hash=hash_token(token), source=source,
                              owner=owner))
    session.flush()
    return token


def input_url(api_url: str, token: str) -> str:
    """`https://token:t.<uuid>@<host>/logs`, on whatever scheme and host the API is served at."""
    parts = urlsplit(api_url)
    return urlunsplit((parts.scheme, f"token:{token}@{parts.netloc}", "/logs", "", ""))


def owned_input_token(session: Session, owner: str) -> str | None:
    return session.scalar(select(LogInputToken.token).where(LogInputToken.owner == owner).limit(1))


def find_input_token(session: Session, token: str) -> LogInputToken | None:
    return session.scalar(select(LogInputToken).where(LogInputToken.token_hash == hash_token(token)))


def revoke_owned(session: Session, owner: str) -> None:
    """Everything an owner (an add-on attachment) had in the log system: input tokens and drains."""
    session.execute(delete(LogInputToken).where(LogInputToken.owner == owner))
    session.execute(delete(LogDrain).where(LogDrain.owner == owner))
    session.flush()
