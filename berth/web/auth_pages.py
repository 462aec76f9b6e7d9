"""Sign up, sign in, sign out, and the home page (the marketplace, or the dashboard once in)."""
from __future__ import annotations

from typing import Any

from flask import g, redirect, request, session, url_for

from berth import accounts
from berth.auth import SignInThrottled, sign_in
from berth.errors import InvalidParams
from berth.httpapi.body import load
from berth.httpapi.context import database, db_session
from berth.web import sessions
from berth.web.forms import LoginForm, SignupForm
from berth.web.pages import SESSION_KEY, blueprint, form_error, render, safe_next

Reply = Any
BAD_LOGIN = "That email address and password do not match an account."


def _sign_in(account: accounts.Account) -> None:
    session.clear()  # a fresh cookie (and CSRF secret) for the signed-in session
    session[SESSION_KEY] = sessions.start_session(db_session(), account)
    session.permanent = True


@blueprint.get("/")
def home() -> Reply:
    if g.get("account_id"):
        from berth.web.dashboard import apps_page
        return apps_page()
    from berth.web.marketplace import catalogue_page
    return catalogue_page()


@blueprint.route("/signup", methods=["GET", "POST"])
def signup() -> Reply:
    if request.method == "GET":
        return render("web/signup.html", form={})
    try:
        data = load(SignupForm(), request.form.to_dict())
        account, _key = accounts.create_account(db_session(), data["email"], data["password"])
    except InvalidParams as error:
        return form_error("web/signup.html", error)
    _sign_in(account)
    return redirect(url_for("web.home"), 303)


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Reply:
    next_page = request.values.get("next")
    if request.method == "GET":
        return render("web/login.html", form={}, next_page=next_page)
    try:
        data = load(LoginForm(), request.form.to_dict())
    except InvalidParams as error:
        return form_error("web/login.html", error, next_page=next_page)
    try:
        account = sign_in(database(), data["email"], data["password"], request.remote_addr or "unknown")
    except SignInThrottled as throttled:
        page, status = form_error("web/login.html", throttled, next_page=next_page)
        return page, status, {"Retry-After": str(throttled.retry_after)}
    if account is None:
        return form_error("web/login.html", InvalidParams(BAD_LOGIN, status=401), next_page=next_page)
    account = db_session().merge(account, load=False)
    _sign_in(account)
    return redirect(safe_next(next_page), 303)


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> Reply:
    if request.method == "GET":  # a link cannot sign anyone out (CSRF): this page's form can
        return render("web/logout.html")
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        sessions.end_session(db_session(), token)
    session.clear()
    return redirect(url_for("web.home"), 303)
