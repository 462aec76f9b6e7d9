"""The account page: API keys are created through the API's rules, shown once, and revoked."""
from __future__ import annotations

import re

from flask import Flask

from tests.conftest import Api, User
from tests.web.conftest import Browser, text

SECRET_BLOCK = re.compile(r'<div class="secret" id="new-token">([^<]+)</div>')


def _bearer(api: Api, token: str) -> int:
    return api.get("/account", headers={"Authorization": f"Bearer {token}"}).status_code


def test_the_account_page_shows_the_email_and_keys_without_tokens(alice: User, signed_in: Browser) -> None:
    page = signed_in.get("/dashboard/account")
    body = text(page)
    assert page.status_code == 200 and body.count("<h1") == 1
    assert alice.email in body and f"…{alice.key[-4:]}" in body
    assert alice.key not in body and 'class="secret"' not in body


def test_a_new_key_is_shown_once_works_and_stops_working_when_revoked(api: Api, alice: User,
                                                                    signed_in: Browser) -> None:
    signed_in.get("/dashboard/account")
    created = signed_in.submit("/dashboard/account/keys", {"description": "CI deploys", "expires_in_days": "30"})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    found = SECRET_BLOCK.search(text(created))
    assert found, text(created)
    token = found.group(1)
    assert "it will not be shown again" in text(created)
    assert text(created).count(token) == 1  # in the secret block only, not in the list

    again = text(signed_in.get("/dashboard/account"))
    assert token not in again and "CI deploys" in again and f"…{token[-4:]}" in again
    assert _bearer(api, token) == 200
    assert api.get("/account", headers={"Authorization": f"Bearer {token}"}).get_json()["email"] == alice.email

    keys = api.get("/oauth/authorizations", alice).get_json()
    new = next(key for key in keys if key["description"] == "CI deploys")
    assert 29 * 86400 < new["access_token"]["expires_in"] <= 30 * 86400
    revoked = signed_in.submit(f"/dashboard/account/keys/{new['id']}/revoke")
    assert revoked.status_code == 303 and revoked.headers["Location"].endswith("/dashboard/account")
    assert _bearer(api, token) == 401
    after = text(signed_in.get("/dashboard/account"))
    assert "Revoked the API key CI deploys." in after and f"…{token[-4:]}" not in after
    assert _bearer(api, alice.key) == 200  # the other keys are untouched


def test_bad_key_input_is_refused_with_the_apis_message(api: Api, alice: User, signed_in: Browser) -> None:
    signed_in.get("/dashboard/account")
    long = signed_in.submit("/dashboard/account/keys", {"description": "x" * 1001})
    assert long.status_code == 422 and "Longer than maximum length 1000" in text(long)
    odd = signed_in.submit("/dashboard/account/keys", {"description": "odd", "expires_in_days": "7"})
    assert odd.status_code == 422 and 'class="secret"' not in text(odd)
    assert len(api.get("/oauth/authorizations", alice).get_json()) == 1


def test_nobody_else_can_revoke_a_key_and_forms_need_csrf(app: Flask, api: Api, alice: User, bob: User,
                                                          signed_in: Browser) -> None:
    bobs_key = api.get("/oauth/authorizations", bob).get_json()[0]["id"]
    signed_in.get("/dashboard/account")
    assert signed_in.submit(f"/dashboard/account/keys/{bobs_key}/revoke").status_code == 404
    assert _bearer(api, bob.key) == 200
    alices_key = api.get("/oauth/authorizations", alice).get_json()[0]["id"]
    assert signed_in.submit(f"/dashboard/account/keys/{alices_key}/revoke", csrf=False).status_code == 400
    assert signed_in.submit("/dashboard/account/keys", {"description": "sneaky"}, csrf=False).status_code == 400
    assert _bearer(api, alice.key) == 200
    assert len(api.get("/oauth/authorizations", alice).get_json()) == 1


def test_signed_out_visitors_cannot_create_keys(app: Flask, api: Api, alice: User) -> None:
    visitor = Browser(app)
    visitor.get("/login")
    answer = visitor.submit("/dashboard/account/keys", {"description": "anon"})
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert len(api.get("/oauth/authorizations", alice).get_json()) == 1
