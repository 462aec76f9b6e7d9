"""Sign up, sign in, sign out; sessions, CSRF, the sign-in throttle and error pages."""
from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import pytest
from flask import Flask

from berth.auth import FAILURES_PER_ADDRESS, FAILURES_PER_EMAIL
from tests.conftest import Api, User, basic
from tests.web.conftest import Browser, text


def test_sign_up_signs_in_and_hashes_the_password(app: Flask, browser: Browser) -> None:
    browser.get("/signup")
    answer = browser.submit("/signup", {"email": "New@Example.com", "password": "a long password",
                                        "password_again": "a long password"})
    assert answer.status_code == 303
    home = browser.get("/")
    assert "Your apps" in text(home) and "new@example.com" in text(home)
    database = app.extensions["berth.database"]
    with database.session(write=False) as session:
        from berth.accounts import find_account_by_email
        account = find_account_by_email(session, "new@example.com")
        assert account is not None and account.password_hash is not None
        assert "a long password" not in account.password_hash and account.password_hash.startswith("$argon2")


def test_sign_up_errors_keep_the_form_and_create_nothing(app: Flask, browser: Browser, alice: User) -> None:
    browser.get("/signup")
    short = browser.submit("/signup", {"email": "x@example.com", "password": "short", "password_again": "short"})
    assert short.status_code == 422 and "at least 10 characters" in text(short)
    assert 'value="x@example.com"' in text(short)
    differ = browser.submit("/signup", {"email": "x@example.com", "password": "a long password",
                                        "password_again": "another long one"})
    assert differ.status_code == 422 and "differ" in text(differ)
    taken = browser.submit("/signup", {"email": alice.email, "password": "a long password",
                                       "password_again": "a long password"})
    assert taken.status_code == 422 and "already registered" in text(taken)
    with app.extensions["berth.database"].session(write=False) as session:
        from berth.accounts import find_account_by_email
        assert find_account_by_email(session, "x@example.com") is None


def test_the_session_cookie_is_httponly_and_samesite(browser: Browser, alice: User) -> None:
    browser.get("/login")
    answer = browser.submit("/login", {"email": alice.email, "password": alice.password})
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_wrong_password_is_refused_without_saying_which_part(browser: Browser, alice: User) -> None:
    browser.get("/login")
    wrong = browser.submit("/login", {"email": alice.email, "password": "not it"})
    unknown = browser.submit("/login", {"email": "nobody@example.com", "password": "not it"})
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match an account" in text(wrong) and "do not match an account" in text(unknown)
    assert browser.get("/dashboard").status_code == 302  # still signed out


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(browser: Browser, alice: User) -> None:
    first = browser.get("/dashboard/account")
    assert first.status_code == 302 and "/login?next=/dashboard/account" in first.headers["Location"]
    browser.get("/login")
    answer = browser.submit("/login", {"email": alice.email, "password": alice.password,
                                       "next": "/dashboard/account"})
    assert answer.headers["Location"].endswith("/dashboard/account")
    other = Browser(browser.client.application)
    other.get("/login")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = other.submit("/login", {"email": alice.email, "password": alice.password, "next": target})
        assert answer.headers["Location"] == "/", target
        other.get("/login")


def test_forms_without_or_with_a_bad_csrf_token_are_refused(app: Flask, signed_in: Browser) -> None:
    missing = signed_in.submit("/dashboard/apps", {"name": "no-token-app"}, csrf=False)
    assert missing.status_code == 400 and "CSRF token is missing" in text(missing)
    forged = signed_in.submit("/dashboard/apps", {"name": "no-token-app", "csrf_token": "forged"})
    assert forged.status_code == 400 and "text/html" in forged.content_type
    assert "no-token-app" not in text(signed_in.get("/dashboard"))


def test_an_expired_csrf_token_is_refused(app: Flask, signed_in: Browser) -> None:
    app.config["WTF_CSRF_TIME_LIMIT"] = 1
    try:
        import time
        signed_in.get("/dashboard")
        time.sleep(2.1)
        answer = signed_in.submit("/dashboard/apps", {"name": "late-app"})
        assert answer.status_code == 400 and "expired" in text(answer)
    finally:
        app.config["WTF_CSRF_TIME_LIMIT"] = 3600


def test_sign_out_ends_the_session_everywhere(app: Flask, signed_in: Browser) -> None:
    stolen = signed_in.client.get_cookie("berth_session")
    assert stolen is not None
    assert signed_in.get("/logout").status_code == 200  # a page with a form: GET changes nothing
    assert signed_in.get("/dashboard").status_code == 200
    assert signed_in.submit("/logout").status_code == 303
    assert signed_in.get("/dashboard").status_code == 302
    replay = app.test_client()
    replay.set_cookie("berth_session", stolen.value)
    assert replay.get("/dashboard").status_code == 302  # the copied cookie died with the row


def test_repeated_failures_lock_sign_in_for_that_email(app: Flask, browser: Browser, alice: User) -> None:
    from berth.auth import FAILURES_PER_EMAIL
    browser.get("/login")
    for _ in range(FAILURES_PER_EMAIL):
        assert browser.submit("/login", {"email": alice.email, "password": "guess"}).status_code == 401
    locked = browser.submit("/login", {"email": alice.email, "password": alice.password})
    assert locked.status_code == 429 and "Too many failed sign-ins" in text(locked)
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert browser.get("/dashboard").status_code == 302


def test_pages_answer_html_errors_and_the_api_keeps_json(api: Api, browser: Browser, alice: User) -> None:
    missing_page = browser.get("/dashboard/no/such/page")
    assert missing_page.status_code == 404 and missing_page.mimetype == "text/html"
    assert "Traceback" not in text(missing_page)
    assert api.get("/apps").status_code == 401 and api.get("/apps").mimetype == "application/json"
    assert api.get("/account", alice).mimetype == "application/json"
    assert api.get("/no-such-endpoint").mimetype == "application/json"


def test_the_home_page_is_the_marketplace_or_the_dashboard(browser: Browser, alice: User) -> None:
    assert "marketplace" in text(browser.get("/")).lower()
    browser.sign_in(alice)
    assert "Your apps" in text(browser.get("/"))


def test_an_app_is_created_from_the_dashboard(signed_in: Browser) -> None:
    answer = signed_in.submit("/dashboard/apps", {"name": "web-made"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/dashboard/apps/web-made")
    assert "web-made" in text(signed_in.get("/dashboard"))
    bad = signed_in.submit("/dashboard/apps", {"name": "Bad Name!"})
    assert bad.status_code == 422 and 'role="alert"' in text(bad)


def test_user_text_is_escaped(signed_in: Browser) -> None:
    answer = signed_in.submit("/dashboard/apps", {"name": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in text(answer)
    assert "&lt;script&gt;" in text(answer)


# ---- one sign-in throttle for the page and the API's Basic email:password ----------------------

def _api_login(api: Api, email: str, password: str) -> Any:
    return api.post("/oauth/authorizations", headers={"Authorization": basic(email, password)}, json={})


def _assert_throttled(answer: Any) -> None:
    assert answer.status_code == 429, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["id"] == "rate_limit" and "Too many failed sign-ins" in body["message"], body
    assert 0 < int(answer.headers["Retry-After"]) <= 15 * 60


def test_api_password_guesses_are_throttled_even_for_the_right_password(api: Api, alice: User) -> None:
    for _ in range(FAILURES_PER_EMAIL):
        assert _api_login(api, alice.email, "guess").status_code == 401
    _assert_throttled(_api_login(api, alice.email, alice.password))
    _assert_throttled(_api_login(api, alice.email.upper(), alice.password))  # same email, other case
    assert api.get("/account", alice).status_code == 200  # API keys keep working meanwhile


def test_page_failures_count_against_the_api(api: Api, browser: Browser, alice: User) -> None:
    browser.get("/login")
    for _ in range(FAILURES_PER_EMAIL):
        assert browser.submit("/login", {"email": alice.email, "password": "guess"}).status_code == 401
    _assert_throttled(_api_login(api, alice.email, alice.password))


def test_api_failures_count_against_the_page(api: Api, browser: Browser, alice: User) -> None:
    for _ in range(FAILURES_PER_EMAIL):
        assert _api_login(api, alice.email, "guess").status_code == 401
    browser.get("/login")
    locked = browser.submit("/login", {"email": alice.email, "password": alice.password})
    assert locked.status_code == 429 and "Too many failed sign-ins" in text(locked)
    assert browser.get("/dashboard").status_code == 302


def test_guessing_across_emails_from_one_address_is_throttled(api: Api, alice: User) -> None:
    for n in range(FAILURES_PER_ADDRESS):
        assert _api_login(api, f"nobody{n}@example.com", "guess").status_code == 401
    _assert_throttled(_api_login(api, alice.email, alice.password))


def test_concurrent_guesses_get_no_more_tries_than_the_limit(app: Flask, alice: User) -> None:
    """Attempts are counted before the password is checked, so guesses sent at once (argon2
    runs outside the GIL, in parallel) cannot all pass the check before any is counted."""
    attempts = FAILURES_PER_EMAIL + 7
    start = threading.Barrier(attempts)

    def guess(_n: int) -> int:
        client = Api(app)
        start.wait(timeout=30)
        return int(_api_login(client, alice.email, "guess").status_code)

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        statuses = sorted(pool.map(guess, range(attempts)))
    assert statuses == [401] * FAILURES_PER_EMAIL + [429] * (attempts - FAILURES_PER_EMAIL), statuses


def test_a_right_password_clears_the_emails_count(api: Api, alice: User) -> None:
    for _ in range(FAILURES_PER_EMAIL - 1):
        assert _api_login(api, alice.email, "guess").status_code == 401
    assert _api_login(api, alice.email, alice.password).status_code == 201
    for _ in range(FAILURES_PER_EMAIL - 1):
        assert _api_login(api, alice.email, "guess").status_code == 401
    assert _api_login(api, alice.email, alice.password).status_code == 201


def test_a_throttled_guess_costs_no_password_hashing(api: Api, alice: User) -> None:
    def timed(password: str, status: int) -> float:
        started = time.perf_counter()
        assert _api_login(api, alice.email, password).status_code == status
        return time.perf_counter() - started

    hashed = [timed("guess", 401) for _ in range(FAILURES_PER_EMAIL)]
    refused = [timed("guess", 429) for _ in range(5)]
    # argon2 takes ~0.2 s here; a refusal reads two rows.
    assert statistics.median(refused) < statistics.median(hashed) / 3, (refused, hashed)


# ---- where sign-in sends the browser afterwards ---------------------------------------------------

OFF_SITE_TARGETS = [
    "//evil.example/", "https://evil.example/", "http:evil.example", "javascript:alert(1)",
    "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/%09/evil.example", "/\n/evil.example",
    "/\r\n/evil.example", " //evil.example", "/ /evil.example", "/\x00/evil.example", "\x01//evil.example",
    "/\u3000/evil.example", "///evil.example", "/\\/evil.example", "evil.example", "",
    "HTTPS://evil.example", "/\x7f/evil.example", "/%5C/evil.example", "%2F%2Fevil.example",
]


@pytest.mark.parametrize("target", OFF_SITE_TARGETS)
def test_sign_in_never_redirects_off_site(app: Flask, carol: User, target: str) -> None:
    visitor = Browser(app)
    visitor.get("/login")
    answer = visitor.submit("/login?next=" + quote(target, safe=""),
                            {"email": carol.email, "password": carol.password})
    assert answer.status_code == 303
    location = answer.headers["Location"]
    parts = urlsplit(urljoin("http://berth.test/login", location))
    assert (parts.scheme, parts.netloc) == ("http", "berth.test"), (target, location)
    assert not location.startswith(("//", "\\\\", "/\\")), (target, location)


@pytest.mark.parametrize("target", ["/dashboard/account", "/dashboard/apps/x?tab=config", "/marketplace"])
def test_sign_in_keeps_same_site_paths(app: Flask, carol: User, target: str) -> None:
    visitor = Browser(app)
    visitor.get("/login")
    answer = visitor.submit("/login?next=" + quote(target, safe=""),
                            {"email": carol.email, "password": carol.password})
    assert answer.headers["Location"] == target
