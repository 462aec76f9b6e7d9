"""The account page: who you are, and your API keys (create, shown once, revoke).

Keys go through the API's schema and `accounts` functions. Only a key's SHA-256 is stored, so
the clear token exists only on the answer to the POST that minted it: it is rendered there and
never put in the session cookie, a redirect or the list.
"""
from __future__ import annotations

from typing import Any

from flask import flash, get_flashed_messages, redirect, request, url_for

from berth import accounts
from berth.errors import BerthError, InvalidParams
from berth.httpapi.body import load
from berth.httpapi.context import current_account, db_session
from berth.platform.schemas import AuthorizationCreateSchema
from berth.web.pages import blueprint, form_error, login_required, render

Reply = Any
TEMPLATE = "web/dashboard/account.html"
DAY = 24 * 60 * 60
EXPIRY_DAYS = {"": None, "30": 30, "90": 90, "365": 365}  # the form's choices ("" = never)


def _keys() -> list[accounts.Authorization]:
    query = accounts.list_authorizations_query(current_account()).order_by(accounts.Authorization.created_at)
    return list(db_session().scalars(query))


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    messages = get_flashed_messages()
    context.setdefault("notice", messages[-1] if messages else None)
    context.setdefault("form", {})
    return render(TEMPLATE, status, keys=_keys(), expiry_days=EXPIRY_DAYS, **context)


@blueprint.get("/dashboard/account")
@login_required
def account_page() -> Reply:
    return _page()


def _expires_in(choice: str) -> int | None:
    if choice not in EXPIRY_DAYS:
        raise InvalidParams("Choose when the key expires from the list.")
    days = EXPIRY_DAYS[choice]
    return days * DAY if days else None


@blueprint.post("/dashboard/account/keys")
@login_required
def create_key() -> Reply:
    """The answer shows the new token once; it is not cached, and a reload shows the list only."""
    try:
        params = load(AuthorizationCreateSchema(), {
            "description": (request.form.get("description") or "").strip(),
            "expires_in": _expires_in(request.form.get("expires_in_days") or "")})
        created = accounts.create_authorization(db_session(), current_account(), **params)
    except BerthError as error:
        return form_error(TEMPLATE, error, keys=_keys(), expiry_days=EXPIRY_DAYS)
    body, status = _page(201, new_key=created, new_token=created.clear_token,
                         notice="Your new API key is below. Copy it now: it will not be shown again.")
    return body, status, {"Cache-Control": "no-store"}


@blueprint.post("/dashboard/account/keys/<key_id>/revoke")
@login_required
def revoke_key(key_id: str) -> Reply:
    """As the API's DELETE /oauth/authorizations/{id}: the key's row goes, so the token stops working."""
    session = db_session()
    key = accounts.get_authorization(session, current_account(), key_id)  # another's key: 404
    label = key.description or f"…{key.token_suffix}"
    session.delete(key)
    session.flush()
    flash(f"Revoked the API key {label}.")
    return redirect(url_for("web.account_page"), 303)
