"""Who is asking: API keys from Bearer or Basic headers, and email:password sign-in.

Password sign-in has one throttle, shared by the sign-in page and the API's Basic
email:password (`heroku login -i`): attempts are counted in the database per email address and
per client address in a fixed window, before the password is checked (a success takes its own
back). Past the limit, sign-in is refused, even with the right password, until the window
ends, and a refused guess costs no argon2 time.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from berth.accounts import (
    Account,
    Authorization,
    LoginThrottle,
    account_for_token,
    check_password,
    find_account_by_email,
    normalise_email,
)
from berth.db import Database, utcnow
from berth.errors import RateLimited, Unauthorized

THROTTLE_WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL = 5
FAILURES_PER_ADDRESS = 20


@dataclass(frozen=True)
class Credentials:
    """What the Authorization header carried: a token, or a user name and password."""

    token: str | None = None
    username: str | None = None
    password: str | None = None


class SignInThrottled(RateLimited):
    """Too many failed sign-ins: `retry_after` seconds until the window ends (Retry-After)."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, round(retry_after / 60))
        super().__init__(f"Too many failed sign-ins for this email address or from your network "
                         f"address. Try again in about {minutes} minute{'s' if minutes != 1 else ''}.")
        self.retry_after = retry_after


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


def authenticate_password(database: Database, credentials: Credentials | None,
                          address: str) -> Account | None:
    """email:password (heroku login -i). None when the header is not a user name + password
    or the password is wrong; SignInThrottled past the limit."""
    if credentials is None or credentials.token is not None or not credentials.username:
        return None
    return sign_in(database, credentials.username, credentials.password or "", address)


def sign_in(database: Database, email: str, password: str, address: str) -> Account | None:
    """The account whose password this is, or None (the attempt stays counted as a failure).

    Each attempt is counted before the password is checked, so guesses sent at once cannot
    all pass the check before any is counted; while the email or the client address is locked,
    SignInThrottled is raised and no password is hashed. Each step runs in its own short
    transaction, so a failure stays counted when the caller's request answers 401 and rolls
    back. The account returned belongs to no session: merge it into the caller's.
    """
    with database.transaction() as writing:
        wait = count_attempt(writing, email, address)
    if wait:
        raise SignInThrottled(wait)
    with database.session(write=False) as reading:
        account = find_account_by_email(reading, email)
        accepted = check_password(account, password)
    if not accepted or account is None:
        return None
    with database.transaction() as writing:
        forget_attempt(writing, email, address)
    return account


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _limits(email: str, address: str) -> list[tuple[str, int]]:
    # Always locked in this order (email, then address): two attempts never deadlock.
    return [(_key("email", normalise_email(email)), FAILURES_PER_EMAIL),
            (_key("ip", address), FAILURES_PER_ADDRESS)]


def _locked_rows(session: Session, email: str, address: str) -> list[tuple[LoginThrottle, int]]:
    """This email's and this address's counts, locked, in a current window."""
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = []
    for key, limit in _limits(email, address):
        # Two first attempts at once must not collide on the key: create, then lock the row.
        session.execute(insert(LoginThrottle).values(key=key, failures=0, window_started_at=now)
                        .on_conflict_do_nothing())
        row = session.scalars(select(LoginThrottle).where(LoginThrottle.key == key)
                              .with_for_update().execution_options(populate_existing=True)).one()
        if row.window_started_at + THROTTLE_WINDOW <= now:
            row.failures, row.window_started_at = 0, now
        rows.append((row, limit))
    return rows


def count_attempt(session: Session, email: str, address: str) -> int:
    """Counts a sign-in attempt and returns 0; or, past a limit, counts nothing and returns how
    many seconds remain until the window ends."""
    rows = _locked_rows(session, email, address)
    now = utcnow()
    wait = max((int((row.window_started_at + THROTTLE_WINDOW - now).total_seconds()) + 1
                for row, limit in rows if row.failures >= limit), default=0)
    if not wait:
        for row, _limit in rows:
            row.failures += 1
    session.flush()
    return wait


def forget_attempt(session: Session, email: str, address: str) -> None:
    """A successful sign-in clears its email's count and takes its own attempt off the
    address's (not more: one good password must not reset guessing at other accounts)."""
    rows = _locked_rows(session, email, address)
    email_row, _ = rows[0]
    session.delete(email_row)
    address_row, _ = rows[1]
    address_row.failures = max(0, address_row.failures - 1)
    session.flush()
