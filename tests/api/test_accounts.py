"""Accounts and API keys: Basic email:password login, Bearer/Basic keys, list/show/revoke."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from berth.accounts import Authorization
from berth.db import utcnow
from tests.conftest import Api, User, basic

LOGIN_BODY = {"description": "Heroku CLI login from laptop", "expires_in": 2592000, "scope": ["global"]}


def login(api: Api, email: str, password: str) -> object:
    return api.post("/oauth/authorizations", json=LOGIN_BODY, headers={"Authorization": basic(email, password)})


def test_password_login_mints_a_working_key(api: Api, alice: User) -> None:
    response = login(api, alice.email, alice.password)
    assert response.status_code == 201
    body = response.get_json()
    token = body["access_token"]["token"]
    assert body["user"]["email"] == alice.email and token != alice.key
    assert 2591990 <= body["access_token"]["expires_in"] <= 2592000
    me = api.get("/account", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["email"] == alice.email
    assert me.get_json()["last_login"] is not None


def test_login_email_is_case_insensitive(api: Api, alice: User) -> None:
    assert login(api, "ALICE@Example.com", alice.password).status_code == 201


def test_wrong_password_or_unknown_email_is_401(api: Api, alice: User) -> None:
    for email, password in ((alice.email, "wrong"), ("nobody@example.com", alice.password)):
        response = login(api, email, password)
        assert response.status_code == 401
        assert response.get_json()["id"] == "unauthorized"


def test_password_is_only_accepted_for_minting_keys(api: Api, alice: User) -> None:
    response = api.get("/account", headers={"Authorization": basic(alice.email, alice.password)})
    assert response.status_code == 401


def test_key_as_basic_password_with_any_user_name(api: Api, alice: User) -> None:
    for username in ("", "heroku", alice.email):
        response = api.get("/account", headers={"Authorization": basic(username, alice.key)})
        assert response.status_code == 200, username


def test_keys_are_listed_redacted_and_default_key_is_tilde(api: Api, alice: User) -> None:
    minted = login(api, alice.email, alice.password).get_json()
    listed = api.get("/oauth/authorizations", alice).get_json()
    assert {a["id"] for a in listed} == {minted["id"], api.get("/oauth/authorizations/~", alice).get_json()["id"]}
    for authorization in listed:
        token = authorization["access_token"]["token"]
        assert token.startswith("**********") and len(token) == 14
        assert alice.key not in str(authorization) and minted["access_token"]["token"] not in str(authorization)
    default = api.get("/oauth/authorizations/~", alice).get_json()
    assert default["default"] is True and default["access_token"]["token"].endswith(alice.key[-4:])


def test_revoked_key_stops_working_at_once(api: Api, alice: User) -> None:
    minted = login(api, alice.email, alice.password).get_json()
    bearer = {"Authorization": f"Bearer {minted['access_token']['token']}"}
    assert api.get("/account", headers=bearer).status_code == 200
    assert api.delete(f"/oauth/authorizations/{minted['id']}", alice).status_code == 200
    response = api.get("/account", headers=bearer)
    assert response.status_code == 401 and response.get_json()["id"] == "unauthorized"
    assert api.get("/account", alice).status_code == 200


def test_regenerate_replaces_the_token(api: Api, alice: User) -> None:
    response = api.post("/oauth/authorizations/~/actions/regenerate-tokens", alice)
    assert response.status_code == 200
    new_token = response.get_json()["access_token"]["token"]
    assert api.get("/account", alice).status_code == 401
    assert api.get("/account", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200


def test_expired_key_is_refused(api: Api, alice: User) -> None:
    minted = login(api, alice.email, alice.password).get_json()
    with api.app.extensions["berth.database"].transaction() as session:
        session.execute(update(Authorization).where(Authorization.id == minted["id"])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    response = api.get("/account", headers={"Authorization": f"Bearer {minted['access_token']['token']}"})
    assert response.status_code == 401


def test_keys_are_stored_hashed(api: Api, alice: User) -> None:
    with api.app.extensions["berth.database"].transaction() as session:
        stored = session.scalars(select(Authorization.token_hash)).all()
    assert stored and all(alice.key not in value for value in stored)


def test_other_users_keys_are_invisible(api: Api, alice: User, bob: User) -> None:
    bobs = api.get("/oauth/authorizations/~", bob).get_json()["id"]
    response = api.get(f"/oauth/authorizations/{bobs}", alice)
    assert response.status_code == 404 and response.get_json()["resource"] == "authorization"
    assert api.delete(f"/oauth/authorizations/{bobs}", alice).status_code == 404
    assert api.get("/account", bob).status_code == 200


def test_unsupported_scope_and_bad_expiry_are_422(api: Api, alice: User) -> None:
    for body in ({"scope": ["read"]}, {"expires_in": -5}, {"expires_in": "soon"}):
        response = api.post("/oauth/authorizations", alice, json=body)
        assert response.status_code == 422, body
        assert response.get_json()["id"] == "invalid_params"
    assert len(api.get("/oauth/authorizations", alice).get_json()) == 1


def test_account_update_and_users_tilde(api: Api, alice: User, bob: User) -> None:
    response = api.patch("/account", alice, json={"name": "Alice Ünïcode 🚀", "beta": True})
    assert response.status_code == 200
    assert response.get_json()["name"] == "Alice Ünïcode 🚀" and response.get_json()["beta"] is True
    assert api.get("/users/~", alice).get_json()["name"] == "Alice Ünïcode 🚀"
    assert api.get(f"/users/{alice.email}", alice).get_json()["id"] == alice.id
    assert api.get(f"/users/{bob.email}", alice).status_code == 404


def test_logout_session_endpoint_answers_like_heroku(api: Api, alice: User) -> None:
    response = api.delete("/oauth/sessions/~", alice)
    assert response.status_code == 404 and response.get_json()["resource"] == "session"


def test_rate_limits_endpoint(api: Api, alice: User) -> None:
    api.get("/account", alice)
    first = api.get("/account/rate-limits", alice).get_json()["remaining"]
    second = api.get("/account/rate-limits", alice).get_json()["remaining"]
    assert first == second and 4490 <= first < 4500
