"""Accounts and their API keys (Heroku "OAuth authorizations"): models and service functions."""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, Select, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from berth import crypto
from berth.db import Base, new_id, utcnow
from berth.errors import InvalidParams, NotFound

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
DEFAULT_KEY_DESCRIPTION = "Default API key"
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so a miss costs as long as a wrong password.
    Made on first use, not at import: hashing takes about a second, and every process that imports
    this module (git's hooks on each push, the CLI) would pay it."""
    return _hasher.hash("berth-dummy-password")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None]
    password_hash: Mapped[str | None]
    allow_tracking: Mapped[bool] = mapped_column(Boolean, default=True)
    beta: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Authorization(Base):
    """An API key. Only its SHA-256 is stored; the clear token is shown once, on creation."""

    __tablename__ = "authorizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_suffix: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(String(1000), default="")
    scope: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["global"])
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship(lazy="joined")
    # Set only on the object that minted the token, never loaded from the database.
    clear_token = None  # type: str | None

    @property
    def expires_in(self) -> int | None:
        if self.expires_at is None:
            return None
        return max(0, int((self.expires_at - utcnow()).total_seconds()))


class RateLimitBucket(Base):
    __tablename__ = "rate_limit_buckets"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"),
                                            primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    refreshed_at: Mapped[float] = mapped_column(Float)  # epoch seconds: cheap arithmetic


class LoginThrottle(Base):
    """Failed sign-ins per key (an email address, or a client address) in the current window,
    shared by the sign-in page and the API's Basic email:password (see berth.auth)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of "email:…" / "ip:…"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(account: Account | None, password: str) -> bool:
    stored = account.password_hash if account and account.password_hash else _dummy_hash()
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and account is not None and account.password_hash is not None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_account_by_email(session: Session, email: str) -> Account | None:
    return session.scalar(select(Account).where(Account.email == normalise_email(email)))


def get_account(session: Session, caller: Account, ref: str) -> Account:
    """`~`, the caller's email or id. Other accounts are not visible through the API."""
    if ref == "~" or ref == caller.id or normalise_email(ref) == caller.email:
        return caller
    raise NotFound("Couldn't find that user.", resource="user")


def create_account(session: Session, email: str, password: str | None = None,
                   name: str | None = None) -> tuple[Account, Authorization]:
    email = normalise_email(email)
    if not EMAIL_PATTERN.match(email) or len(email) > 254:
        raise InvalidParams(f"{email!r} is not a valid email address.")
    if find_account_by_email(session, email):
        raise InvalidParams("That email address is already registered.")
    account = Account(email=email, name=name,
                      password_hash=hash_password(password) if password else None)
    session.add(account)
    session.flush()
    key = create_authorization(session, account, description=DEFAULT_KEY_DESCRIPTION,
                               is_default=True)
    return account, key


def update_account(session: Session, account: Account, changes: dict[str, object]) -> Account:
    for field in ("allow_tracking", "beta", "name"):
        if field in changes:
            setattr(account, field, changes[field])
    session.flush()
    return account


def create_authorization(session: Session, account: Account, *, description: str = "",
                         expires_in: int | None = None, scope: list[str] | None = None,
                         is_default: bool = False) -> Authorization:
    token = crypto.new_token()
    auth = Authorization(
        account_id=account.id, token_hash=crypto.hash_token(token), token_suffix=token[-4:],
        description=description, scope=scope or ["global"], is_default=is_default,
        expires_at=utcnow() + timedelta(seconds=expires_in) if expires_in else None)
    auth.account = account
    session.add(auth)
    session.flush()
    auth.clear_token = token
    return auth


def regenerate_token(session: Session, auth: Authorization) -> Authorization:
    token = crypto.new_token()
    auth.token_hash, auth.token_suffix = crypto.hash_token(token), token[-4:]
    session.flush()
    auth.clear_token = token
    return auth


def list_authorizations_query(account: Account) -> Select[tuple[Authorization]]:
    return select(Authorization).where(Authorization.account_id == account.id)


def get_authorization(session: Session, account: Account, ref: str) -> Authorization:
    query = list_authorizations_query(account)
    if ref == "~":
        query = query.where(Authorization.is_default.is_(True))
    elif UUID_PATTERN.match(ref):
        query = query.where(Authorization.id == ref.lower())
    else:
        query = None
    found = session.scalar(query) if query is not None else None
    if found is None:
        raise NotFound("Couldn't find that authorization.", resource="authorization")
    return found


def account_for_token(session: Session, token: str) -> tuple[Account, Authorization] | None:
    digest = crypto.hash_token(token)
    auth = session.scalar(select(Authorization).where(Authorization.token_hash == digest))
    if auth is None or not crypto.same_secret(auth.token_hash, digest):
        return None
    if auth.expires_at is not None and auth.expires_at <= utcnow():
        return None
    return auth.account, auth


