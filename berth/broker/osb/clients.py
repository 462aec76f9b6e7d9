"""Platform credentials: made by the operator (`python -m berth.admin create-osb-client`), one per
platform, owned by a Berth account. The password is a random 256-bit token, so a SHA-256 digest is
enough at rest (no slow KDF per request), compared in constant time."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.accounts import find_account_by_email
from berth.broker.osb.models import OsbClient
from berth.crypto import hash_token, same_secret
from berth.errors import NotFound

USERNAME_PREFIX = "osb-"
# A digest no password has: an unknown username costs the same compare as a known one.
_NO_CLIENT_HASH = hash_token(secrets.token_urlsafe(32))


@dataclass(frozen=True)
class NewClient:
    username: str
    password: str  # shown once


def create_client(session: Session, email: str, *, lenient_org_space: bool = False) -> NewClient:
    owner = find_account_by_email(session, email)
    if owner is None:
        raise NotFound(f"No account with the email {email}; create it first (create-user).", resource="account")
    username = USERNAME_PREFIX + secrets.token_hex(8)
    password = secrets.token_urlsafe(32)
    session.add(OsbClient(username=username, password_hash=hash_token(password), owner_id=owner.id,
                          lenient_org_space=lenient_org_space))
    session.flush()
    return NewClient(username, password)


def list_clients(session: Session) -> list[OsbClient]:
    return list(session.scalars(select(OsbClient).order_by(OsbClient.created_at, OsbClient.username)))


def revoke_client(session: Session, username: str) -> None:
    """The credential stops working at once; what it provisioned stays with its owner's account."""
    client = session.scalar(select(OsbClient).where(OsbClient.username == username))
    if client is None:
        raise NotFound(f"No OSB client {username}; see list-osb-clients.", resource="osb_client")
    session.delete(client)
    session.flush()


_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")


@dataclass(frozen=True)
class Admitted:
    """The platform a request's credentials name (read in one lean statement: every OSB request
    is admitted, and a bind or a poll is on a platform's hot path)."""
    id: str
    username: str


def authenticate(session: Session, username: str, password: str) -> Admitted | None:
    found = session.execute(select(OsbClient.id, OsbClient.password_hash).where(OsbClient.username == username)) \
        .first() if _USERNAME.match(username) else None
    matches = same_secret(hash_token(password), found.password_hash if found is not None else _NO_CLIENT_HASH)
    return Admitted(found.id, username) if found is not None and matches else None
