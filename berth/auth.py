"""Who is asking: API keys from Bearer or Basic headers, and email:password for minting keys."""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy.orm import Session

from berth.accounts import Account, Authorization, account_for_token, check_password, find_account_by_email
from berth.errors import Unauthorized


@dataclass(frozen=True)
class Credentials:
    """What the Authorization header carried: a token, or a user name and password."""

    token: str | None = None
    username: str | None = None
    password: str | None = None


def parse_authorization_header(header: str | None) -> Credentials | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credentials(token=value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Malformed Basic authorization header.") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise Unauthorized("Malformed Basic authorization header.")
        return Credentials(username=username, password=password)
    raise Unauthorized("Unsupported authorization scheme: use Bearer or Basic.")


def authenticate_key(session: Session, credentials: Credentials | None) -> tuple[Account, Authorization]:
    """Bearer KEY, or Basic with the key as password and any user name (heroku3, curl, git)."""
    if credentials is None:
        raise Unauthorized("Invalid credentials provided.")
    token = credentials.token if credentials.token is not None else credentials.password
    found = account_for_token(session, token) if token else None
    if found is None:
        raise Unauthorized("Invalid credentials provided.")
    return found


def authenticate_password(session: Session, credentials: Credentials | None) -> Account | None:
    """email:password (heroku login -i). None when the header is not a user name + password."""
    if credentials is None or credentials.token is not None or not credentials.username:
        return None
    account = find_account_by_email(session, credentials.username)
    if not check_password(account, credentials.password or ""):
        return None
    return account
