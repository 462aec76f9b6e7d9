"""POST/GET/DELETE /apps/{app}/dynos for one-off dynos: `run.N` numbered per app, Heroku's dyno
shape, a single-use attach secret in a rendezvous:// URL, and bad input refused with nothing recorded."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from berth.platform import one_off_dynos
from tests.api.test_slugs import uploaded_slug
from tests.conftest import Api, User


@pytest.fixture
def app_name(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "oneoffs"}).status_code == 201
    return "oneoffs"


@pytest.fixture
def released(api: Api, alice: User, app_name: str) -> dict[str, Any]:
    slug = uploaded_slug(api, alice, app_name, "v1")
    made = api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def dynos(api: Api, user: User, app: str) -> list[dict[str, Any]]:
    listed = api.get(f"/apps/{app}/dynos", user)
    assert listed.status_code == 200
    return listed.get_json()


def test_a_one_off_dyno_is_recorded_as_run_n_with_an_attach_url(api: Api, alice: User, app_name: str,
                                                                released: dict[str, Any], app: Flask) -> None:
    # As `heroku run bash` sends it on a terminal.
    first = api.post(f"/apps/{app_name}/dynos", alice, json={
        "command": "bash", "attach": True, "env": {"TERM": "xterm", "COLUMNS": 80, "LINES": 24},
        "force_no_tty": None, "size": "standard-1X", "type": "run"})
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["name"], body["type"], body["state"], body["command"], body["size"]) == (
        "run.1", "run", "starting", "bash", "Standard-1X")
    assert body["release"] == {"id": released["id"], "version": released["version"]}
    assert body["app"]["name"] == app_name
    assert body["attach_url"].startswith("rendezvous://127.0.0.1:5001/")
    secret = body["attach_url"].rsplit("/", 1)[1]
    assert len(secret) >= 40

    detached = api.post(f"/apps/{app_name}/dynos", alice, json={"command": "echo hi", "attach": False})
    assert detached.status_code == 201 and detached.get_json()["name"] == "run.2"
    assert detached.get_json()["attach_url"] is None
    assert [d["name"] for d in dynos(api, alice, app_name)] == ["run.1", "run.2"]

    database = app.extensions["berth.database"]
    with database.transaction() as session:
        claimed = one_off_dynos.claim_attached(session, secret)
        assert claimed is not None and claimed.name == "run.1" and claimed.tty
        assert one_off_dynos.claim_attached(session, secret) is None  # single use
        assert one_off_dynos.claim_attached(session, secret[:-1] + "x") is None
    assert api.get(f"/apps/{app_name}/dynos/run.1", alice).get_json()["state"] == "up"


def test_heroku3s_null_size_means_the_default_size(api: Api, alice: User, app_name: str,
                                                 released: dict[str, Any]) -> None:
    # heroku3's run_command sends {"command", "attach", "size": null} unless a size is given.
    made = api.post(f"/apps/{app_name}/dynos", alice, json={"command": "echo hi", "attach": False, "size": None})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["size"] == "Standard-1X"


def test_an_app_runs_at_most_herokus_number_of_one_off_dynos_of_a_size_at_once(
        api: Api, alice: User, app_name: str, released: dict[str, Any]) -> None:
    assert api.post(f"/apps/{app_name}/dynos", alice, json={"command": "sleep 9", "size": "eco"}).status_code == 201
    refused = api.post(f"/apps/{app_name}/dynos", alice, json={"command": "sleep 9", "size": "free"})  # also eco
    assert refused.status_code == 429, refused.get_json()
    assert refused.get_json() == {"id": "cannot_run_above_limit", "message": (
        f"Cannot run more than 1 Eco one-off dynos at once on {app_name}. Stop one (heroku ps:stop run.N) "
        "or wait for one to finish.")}
    assert [d["name"] for d in dynos(api, alice, app_name)] == ["run.1"]
    assert api.post(f"/apps/{app_name}/dynos", alice, json={"command": "sleep 9"}).status_code == 201  # standard
    assert api.delete(f"/apps/{app_name}/dynos/run.1", alice).status_code == 202
    assert api.post(f"/apps/{app_name}/dynos", alice, json={"command": "sleep 9", "size": "eco"}).status_code == 201


def test_stopping_a_one_off_dyno_that_has_not_started_means_it_never_will(api: Api, alice: User, app_name: str,
                                                                         released: dict[str, Any],
                                                                         app: Flask) -> None:
    body = api.post(f"/apps/{app_name}/dynos", alice, json={"command": "sleep 100", "attach": True}).get_json()
    stopped = api.delete(f"/apps/{app_name}/dynos/{body['name']}", alice)
    assert stopped.status_code == 202 and stopped.get_json() == {}
    assert dynos(api, alice, app_name) == []
    with app.extensions["berth.database"].transaction() as session:
        assert one_off_dynos.claim_attached(session, body["attach_url"].rsplit("/", 1)[1]) is None
    assert api.delete(f"/apps/{app_name}/dynos/run.9", alice).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"command": ["echo", "hi"]}, "command"),
    ({}, "command"),
    ({"command": "echo", "size": "gigantic-9x"}, "size"),
    ({"command": "echo", "time_to_live": 86401}, "time_to_live"),
    ({"command": "echo", "attach": "yes"}, "attach"),
    ({"command": "echo", "env": {"BAD NAME": "x"}}, "env"),
])
def test_bad_input_is_refused_and_nothing_is_started(api: Api, alice: User, app_name: str,
                                                      released: dict[str, Any], body: dict[str, Any],
                                                      field: str) -> None:
    refused = api.post(f"/apps/{app_name}/dynos", alice, json=body)
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["id"] == "invalid_params" and field in refused.get_json()["message"]
    assert dynos(api, alice, app_name) == []


def test_an_app_without_code_cannot_run_a_one_off_dyno(api: Api, alice: User, app_name: str) -> None:
    refused = api.post(f"/apps/{app_name}/dynos", alice, json={"command": "echo hi", "attach": True})
    assert refused.status_code == 409
    assert refused.get_json()["id"] == "no_release" and "deploy it" in refused.get_json()["message"]
    assert dynos(api, alice, app_name) == []


def test_another_users_app_is_not_found(api: Api, alice: User, app_name: str, released: dict[str, Any]) -> None:
    mallory = api.make_user("mallory@example.com")
    assert api.post(f"/apps/{app_name}/dynos", mallory, json={"command": "id"}).status_code in (403, 404)
    assert api.get(f"/apps/{app_name}/dynos", mallory).status_code in (403, 404)
