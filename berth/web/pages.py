"""The pages blueprint and what every page shares: who is signed in, CSRF on every form,
rendering, and friendly error pages carrying the same message the JSON API gives.

Pages reach the API's service functions and marshmallow schemas directly, in the request's one
database session (committed when the answer's status is below 400, as for the API). Every view
here is public to the API's key check (`install` marks them) and does its own, cookie-based one.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable, TypeVar
from urllib.parse import urljoin, urlsplit

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms import ValidationError as CSRFValidationError

from berth.accounts import Account
from berth.config import Settings
from berth.errors import BerthError, Forbidden, NotFound
from berth.httpapi.context import READ_METHODS, current_account, database
from berth.web import sessions

log = logging.getLogger(__name__)

blueprint = Blueprint("web", __name__)
SESSION_KEY = "sid"
F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    return current_app.config["BERTH_SETTINGS"]


# -- who is asking ------------------------------------------------------------------------------

@blueprint.before_request
def _load_signed_in_account() -> None:
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        with database().session(write=False) as reading:  # no write lock for a look-up
            account_id = sessions.account_id_for(reading, token)
        if account_id is not None:
            g.account_id = account_id  # what the API's service functions and ownership checks use
        else:
            session.pop(SESSION_KEY, None)


@blueprint.before_request
def _check_csrf() -> None:
    if request.method in READ_METHODS:
        return
    try:
        validate_csrf(request.form.get("csrf_token"))
    except CSRFValidationError as error:
        raise CSRFError(str(error)) from None


def signed_in_account() -> Account | None:
    return current_account() if g.get("account_id") else None


def login_required(view: F) -> F:
    """Signed-out visitors are sent to sign in, and back here afterwards."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not g.get("account_id"):
            target = request.full_path if request.method == "GET" else request.path
            return redirect(url_for("web.login", next=target.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect (`//evil`, `https://…`, `/\\evil`,
    `/<TAB>/evil`). Browsers drop control characters and whitespace from a URL and read `\\` as
    `/`, so the target is judged, and returned, the way a browser would read it."""
    home = url_for("web.home")
    cleaned = "".join(ch for ch in target or "" if ch.isprintable() and not ch.isspace())
    cleaned = cleaned.replace("\\", "/")
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return home
    resolved = urlsplit(urljoin("http://berth.invalid/", cleaned))
    if (resolved.scheme, resolved.netloc) != ("http", "berth.invalid"):
        return home
    return cleaned


# -- rendering ----------------------------------------------------------------------------------

def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


@blueprint.app_context_processor
def _page_globals() -> dict[str, Any]:
    return {"csrf_token": generate_csrf}


@blueprint.context_processor
def _signed_in() -> dict[str, Any]:
    account = signed_in_account() if g.get("account_id") else None
    return {"me": account}


def form_error(template: str, error: BerthError, **context: Any) -> tuple[str, int]:
    """The form again, with what the user typed and the API's message."""
    return render(template, error.status, error=error.message, form=request.form, **context)


# -- errors: a page, never a traceback ------------------------------------------------------------

def _error_page(status: int, title: str, message: str) -> Response:
    body = render_template("web/error.html", status=status, title=title, message=message)
    return Response(body, status=status, mimetype="text/html")


@blueprint.errorhandler(BerthError)
def _berth_error(error: BerthError) -> Response:
    if isinstance(error, (NotFound, Forbidden)) and error.status in (403, 404):
        return _error_page(error.status, "Not found" if error.status == 404 else "Not allowed", error.message)
    return _error_page(error.status, "That did not work", error.message)


@blueprint.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> Response:
    return _error_page(400, "The form expired", f"{error.description} Go back, reload the page and try again.")


@blueprint.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    return _error_page(error.code or 500, error.name, error.description or error.name)


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error on a page (request %s)", g.get("request_id"))
    return _error_page(500, "Something went wrong",
                       f"Please try again; quote request id {g.get('request_id')} when reporting it.")


def not_found_page(_rest: str = "") -> Response:
    raise NotFound("There is no such page.", resource="page")


for _prefix in ("/dashboard", "/marketplace", "/partners"):
    blueprint.add_url_rule(f"{_prefix}/<path:_rest>", endpoint=f"missing{_prefix.replace('/', '_')}",
                           view_func=not_found_page, methods=["GET", "POST"])


__all__ = ["blueprint", "form_error", "login_required", "render", "safe_next", "settings",
           "signed_in_account"]
