"""Per-request state: the database session and the authenticated caller."""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import current_app, g, request
from sqlalchemy.orm import Session

from berth.accounts import Account, Authorization
from berth.db import Database
from berth.errors import Unauthorized

F = TypeVar("F", bound=Callable[..., object])
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def database() -> Database:
    return current_app.extensions["berth.database"]


def db_session() -> Session:
    """One session per request, opened on first use; committed or rolled back after it."""
    session = g.get("db_session")
    if session is None:
        session = database().session(write=request.method not in READ_METHODS)
        g.db_session = session
    return session


def current_account() -> Account:
    """The caller, attached to this request's session (it may have been loaded in another)."""
    account = g.get("account")
    if account is None:
        raise Unauthorized()
    session = db_session()
    if account not in session:
        account = g.account = session.merge(account, load=False)
    return account


def current_authorization_or_none() -> Authorization | None:
    """The API key used, or None when the caller logged in with email and password."""
    return g.get("authorization")


def public(view: F) -> F:
    """Marks a view that needs no API key. Everything else requires one (secure by default)."""
    view.berth_public = True  # type: ignore[attr-defined]
    return view


def password_login(view: F) -> F:
    """Marks a view that also accepts Basic email:password (POST /oauth/authorizations)."""
    view.berth_password_login = True  # type: ignore[attr-defined]
    return view


def free(view: F) -> F:
    """Marks a view that costs no rate-limit token (GET /account/rate-limits)."""
    view.berth_free = True  # type: ignore[attr-defined]
    return view
