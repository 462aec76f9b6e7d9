"""Per-request state: the database session and the authenticated caller."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from flask import current_app, g, request
from sqlalchemy.orm import Session

from berth.accounts import Account
from berth.db import Database
from berth.errors import Unauthorized
from berth.httpapi.ratelimit import AdmittedRead, Rows

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


def current_account_id() -> str:
    """The caller's id, known without loading the account."""
    account_id = g.get("account_id")
    if account_id is None:
        raise Unauthorized()
    return account_id


def current_account() -> Account:
    """The caller, attached to this request's session (loaded on first use)."""
    session = db_session()
    account = g.get("account")
    if account is None:
        account = session.get(Account, current_account_id())
        if account is None:  # deleted since the key was checked
            raise Unauthorized()
    elif account not in session:  # loaded by the authentication's own session
        account = session.merge(account, load=False)
    g.account = account
    return account


def logged_in_with_password() -> bool:
    """True when the caller sent email:password rather than an API key."""
    return bool(g.get("password_login"))


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


def partner_access(view: F) -> F:
    """Marks a view partners may call with their add-on's OAuth token, as well as users."""
    view.berth_partner = "also"  # type: ignore[attr-defined]
    return view


def partner_only(view: F) -> F:
    """Marks a view only a partner's OAuth token may call (and no user API key)."""
    view.berth_partner = "only"  # type: ignore[attr-defined]
    return view


ChooseRead = Callable[..., tuple[AdmittedRead, dict[str, Any]]]


def admitted_read(choose: ChooseRead) -> Callable[[F], F]:
    """Marks a view whose data is one read for the caller: `choose(**view_args)` gives that read
    and its parameters. On PostgreSQL the request's admission runs inside it (one round trip);
    the view takes the rows with `caller_rows()`. Authentication still ends before the view runs."""
    def mark(view: F) -> F:
        view.berth_admitted_read = choose  # type: ignore[attr-defined]
        return view
    return mark


def caller_rows() -> Rows:
    """The rows of this view's `admitted_read`: those the admission fetched, or read now (a caller
    admitted the slow way: a missing bucket, a password login)."""
    rows = g.pop("admitted_rows", None)
    if rows is not None:
        return rows
    view = current_app.view_functions[request.endpoint]  # type: ignore[index]
    read, params = view.berth_admitted_read(**(request.view_args or {}))
    return read.run(database(), current_account_id(), params)


def current_partner_addon_id() -> str | None:
    """The add-on whose partner is calling, or None when a user is."""
    return g.get("partner_addon_id")
