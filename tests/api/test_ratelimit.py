"""Admitting a request (its API key and a rate-limit token, in one statement), and the same
admission carried by a route's read (`admitted_read`: one round trip on PostgreSQL). Every
refusal must be the slow path's, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest
from sqlalchemy import bindparam, delete, select, text, update

from berth import create_app
from berth.accounts import Authorization, RateLimitBucket
from berth.addons.postgres.cluster import LocalPostgres
from berth.config import Settings
from berth.crypto import hash_token
from berth.db import utcnow
from berth.httpapi.ratelimit import AdmittedRead, admit
from tests.api.test_conventions import budget_api, json_error, ok_json  # noqa: F401 (a fixture)
from tests.conftest import TEST_KEY, Api, User, basic, empty_all_tables

CONFIG = {"A": "1", "B": "two"}


def remaining(response: Any) -> int:
    return int(response.headers["RateLimit-Remaining"])


def configured_app(api: Api, user: User, name: str, config: dict[str, str] = CONFIG) -> str:
    """The app's id."""
    app_id = ok_json(api.post("/apps", user, json={"name": name}), 201)["id"]
    if config:
        ok_json(api.patch(f"/apps/{name}/config-vars", user, json=config))
    return app_id


def mint_key(api: Api, user: User) -> tuple[str, str]:
    """(authorization id, token) of a new key for the user."""
    minted = ok_json(api.post("/oauth/authorizations", user, json={"description": "t"}), 201)
    return minted["id"], minted["access_token"]["token"]


def test_a_config_read_spends_exactly_one_token_by_name_or_id(budget_api: Callable[[int], Api]) -> None:
    api = budget_api(500)  # slow refill (~0.14 token/s): timing cannot blur the count
    carol = api.make_user("carol@example.com")
    app_id = configured_app(api, carol, "carols-app")
    configured_app(api, carol, "empty-app", config={})
    responses = [api.get("/apps/carols-app/config-vars", carol),
                 api.get(f"/apps/{app_id}/config-vars", carol),
                 api.get(f"/apps/{app_id.upper()}/config-vars", carol),
                 api.get("/apps/empty-app/config-vars", carol)]
    assert [ok_json(r) for r in responses] == [CONFIG, CONFIG, CONFIG, {}]
    seen = [remaining(r) for r in responses]
    assert seen == list(range(seen[0], seen[0] - 4, -1)), seen
    assert remaining(api.get("/account", carol)) == seen[-1] - 1


def test_bad_unknown_expired_revoked_or_password_credentials_on_a_config_read_are_401(
        api: Api, alice: User) -> None:
    configured_app(api, alice, "alices-app")
    path = "/apps/alices-app/config-vars"
    key_id, token = mint_key(api, alice)
    expired_id, expired = mint_key(api, alice)
    with api.app.extensions["berth.database"].transaction() as session:
        session.execute(update(Authorization).where(Authorization.id == expired_id)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert ok_json(api.get(path, None, headers={"Authorization": f"Bearer {token}"})) == CONFIG
    before = remaining(api.get(path, alice))
    ok_json(api.delete(f"/oauth/authorizations/{key_id}", alice))
    refused = [None, "Bearer not-a-real-key", "Bearer ", f"Bearer {alice.key}x", f"Bearer {expired}",
               f"Bearer {token}",  # revoked a moment ago: refused at once
               basic(alice.email, alice.password),  # passwords only mint keys
               basic(alice.email, "wrong"), "Basic !!!not-base64!!!"]
    for header in refused:
        response = api.get(path, None, headers={} if header is None else {"Authorization": header})
        json_error(response, 401, "unauthorized")
        assert "RateLimit-Remaining" not in response.headers
        assert set(response.get_json()) == {"id", "message"}  # no config leaks into a refusal
    # The key as a Basic password (heroku3, git) is admitted; of alice's tokens only the
    # revocation and this read were spent, no refusal.
    accepted = api.get(path, None, headers={"Authorization": basic("", alice.key)})
    assert ok_json(accepted) == CONFIG and remaining(accepted) == before - 2


def test_an_empty_bucket_refuses_a_config_read_with_429(budget_api: Callable[[int], Api]) -> None:
    api = budget_api(4)
    carol, dave = api.make_user("carol@example.com"), api.make_user("dave@example.com")
    configured_app(api, carol, "carols-app")  # create + set: 2 tokens
    assert [remaining(api.get("/apps/carols-app/config-vars", carol)) for _ in range(2)] == [1, 0]
    limited = api.get("/apps/carols-app/config-vars", carol)
    body = json_error(limited, 429, "rate_limit")
    assert "A" not in body and limited.headers["RateLimit-Remaining"] == "0"
    assert limited.headers.get("Request-Id")
    json_error(api.get("/apps/no-such-app/config-vars", carol), 429, "rate_limit")
    assert ok_json(api.get("/account/rate-limits", carol)) == {"remaining": 0}
    # Another account's bucket is its own.
    response = api.get("/apps/carols-app/config-vars", dave)
    json_error(response, 404, "not_found")
    assert response.headers["RateLimit-Remaining"] == "3"


def test_a_missing_bucket_is_made_by_the_slow_path_and_the_read_still_answers(
        budget_api: Callable[[int], Api]) -> None:
    api = budget_api(50)
    carol = api.make_user("carol@example.com")
    configured_app(api, carol, "carols-app")
    with api.app.extensions["berth.database"].transaction() as session:
        session.execute(delete(RateLimitBucket).where(RateLimitBucket.account_id == carol.id))
    response = api.get("/apps/carols-app/config-vars", carol)
    assert ok_json(response) == CONFIG and remaining(response) == 49
    assert remaining(api.get("/apps/carols-app/config-vars", carol)) == 48  # now the fast path


def test_apps_the_caller_cannot_see_are_404_and_cost_a_token_until_shared(
        api: Api, alice: User, bob: User) -> None:
    bobs_id = configured_app(api, bob, "bobs-app")
    before = remaining(api.get("/account", alice))
    for path in ("/apps/bobs-app/config-vars", f"/apps/{bobs_id}/config-vars",
                 "/apps/no-such-app/config-vars", "/apps/%E2%98%83/config-vars"):
        response = api.get(path, alice)
        body = json_error(response, 404, "not_found")
        assert set(body) <= {"id", "message", "resource"} and "A" not in body
    assert remaining(api.get("/account", alice)) == before - 5
    # A collaborator sees the app: the caller's collaborations are matched in the same statement.
    ok_json(api.post("/apps/bobs-app/collaborators", bob, json={"user": alice.email, "silent": True}), 201)
    assert ok_json(api.get("/apps/bobs-app/config-vars", alice)) == CONFIG
    assert ok_json(api.get(f"/apps/{bobs_id}/config-vars", alice)) == CONFIG


def test_an_admitted_read_may_not_reuse_the_admissions_parameter_names() -> None:
    with pytest.raises(ValueError, match="digest"):
        AdmittedRead(lambda caller: select(Authorization.id).where(
            Authorization.account_id == caller, Authorization.token_hash == bindparam("digest")))


# ---- PostgreSQL only: what its statements look like ---------------------------------------------

@pytest.fixture(scope="module")
def postgres_url(postgres_server: LocalPostgres) -> str:
    return (postgres_server.create_database("berth_admission")
            .replace("postgresql://", "postgresql+psycopg://", 1))


@pytest.fixture
def postgres_api(postgres_url: str, tmp_path: Path) -> Iterator[Api]:
    flask_app = create_app(Settings(data_dir=tmp_path, database_url=postgres_url, secret_keys=(TEST_KEY,),
                                    builtin_addons=False))
    yield Api(flask_app)
    empty_all_tables(flask_app)
    flask_app.extensions["berth.database"].dispose()


def backend_settings(api: Api) -> dict[str, dict[int, str]]:
    """synchronous_commit of each engine's pooled backend, by pid (a sequential client keeps one
    connection per pool, the one its requests used)."""
    database = api.app.extensions["berth.database"]
    engines = {name: getattr(database, name) for name in ("write_engine", "autocommit_engine", "lossy_engine")
               if hasattr(database, name)}
    found: dict[str, dict[int, str]] = {}
    for name, engine in engines.items():
        with engine.connect() as connection:
            pid, setting = connection.execute(
                text("SELECT pg_backend_pid(), current_setting('synchronous_commit')")).one()
        found[name] = {pid: setting}
    return found


def backends_whose_last_statement(api: Api, starts: str) -> set[int]:
    """Asked on a connection of its own, so that no pool's backend is asking."""
    url = api.app.extensions["berth.database"].url.replace("+psycopg", "", 1)
    with psycopg.connect(url, autocommit=True) as connection:
        return {pid for (pid,) in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE %s",
            (starts + "%",))}


def test_on_postgresql_spending_a_token_does_not_wait_for_the_wal_flush_but_other_writes_do(
        postgres_api: Api) -> None:
    api = postgres_api
    erin = api.make_user("erin@example.com")
    configured_app(api, erin, "erins-app")  # writes: committed on the write engine
    # What admits every request (a view's own reads would follow it on a shared connection).
    assert admit(api.app.extensions["berth.database"], hash_token(erin.key), capacity=100) is not None
    admitting = backends_whose_last_statement(api, "UPDATE rate_limit_buckets")
    assert admitting
    settings = backend_settings(api)
    by_pid = {pid: setting for per_engine in settings.values() for pid, setting in per_engine.items()}
    # A spent token lost in a crash is harmless: its commit need not wait for the WAL flush ...
    assert {by_pid.get(pid) for pid in admitting} == {"off"}
    # ... and no other connection gives up durability.
    assert set(settings["write_engine"].values()) == {"on"}
    assert set(settings["autocommit_engine"].values()) == {"on"}


def test_on_postgresql_a_config_read_and_its_admission_are_one_statement(postgres_api: Api) -> None:
    api = postgres_api
    erin = api.make_user("erin@example.com")
    configured_app(api, erin, "erins-app")
    assert ok_json(api.get("/apps/erins-app/config-vars", erin)) == CONFIG
    combined = backends_whose_last_statement(api, "WITH admitted AS")
    assert combined, "the admission did not ride on the config read"
    settings = backend_settings(api)
    assert combined == set(settings["lossy_engine"])  # and spends without waiting for the WAL
    assert set(settings["lossy_engine"].values()) == {"off"}
