"""GET/DELETE /apps/{app}/dynos, /formations/{type} and the stop actions over the runner's `dynos`
rows and the one-off dynos: Heroku's dyno shape (never the router's address or the backend's id),
both rows of a name during a rolling deploy, and restart/stop requests recorded as `DynoAction`
rows with an app[api] line and a nudge to the runner; bad or unknown targets change nothing."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from berth.accounts import Account
from berth.config import Settings
from berth.db import Database, utcnow
from berth.jobs.wakeup import RunnerListener
from berth.platform import dyno_actions
from berth.platform.models import App
from tests.conftest import Api, User
from tests.dyno_api.rows import actions, add_dyno, api_lines
from tests.formation.test_formation_api import deploy

SHAPE = {"id", "name", "type", "state", "command", "size", "release", "app", "attach_url", "exit_code",
         "created_at", "updated_at"}


@pytest.fixture
def shop(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    deploy(api, alice, "shop")
    return "shop"


@pytest.fixture
def database(app: Flask) -> Database:
    return app.extensions["berth.database"]


@pytest.fixture
def runner(settings: Settings) -> Iterator[RunnerListener]:
    """Where the runner hears nudge_runner."""
    listener = RunnerListener(settings.data_dir)
    yield listener
    listener.close()


def listed(api: Api, user: User, app: str) -> list[dict[str, Any]]:
    answer = api.get(f"/apps/{app}/dynos", user)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_formation_dynos_and_one_offs_are_listed_in_herokus_shape(api: Api, alice: User, shop: str,
                                                                  database: Database) -> None:
    started = utcnow() - timedelta(minutes=3)
    web1 = add_dyno(database, shop, "web.1", started=started)
    add_dyno(database, shop, "web.2", state="starting")
    add_dyno(database, shop, "worker.1", state="crashed", command="python worker.py", size="standard-2x")
    add_dyno(database, shop, "web.3", state="down")  # replaced: history, not a dyno of the app
    assert api.post(f"/apps/{shop}/dynos", alice, json={"command": "bash", "attach": True}).status_code == 201
    dynos = listed(api, alice, shop)
    assert [(d["name"], d["state"]) for d in dynos] == [
        ("run.1", "starting"), ("web.1", "up"), ("web.2", "starting"), ("worker.1", "crashed")]
    for dyno in dynos:
        assert set(dyno) == SHAPE, dyno  # never `address` or `backend_id`
        assert dyno["attach_url"] is None and dyno["app"] == {"id": dyno["app"]["id"], "name": shop}
    web = dynos[1]
    release = api.get(f"/apps/{shop}/releases", alice).get_json()[-1]
    assert (web["id"], web["type"], web["command"], web["size"]) == (web1, "web", "gunicorn app:app", "Standard-1X")
    assert web["release"] == {"id": release["id"], "version": release["version"]}
    assert web["created_at"] == started.strftime("%Y-%m-%dT%H:%M:%SZ") == web["updated_at"]
    assert dynos[3]["size"] == "Standard-2X"
    for ref in ("web.1", web1):
        shown = api.get(f"/apps/{shop}/dynos/{ref}", alice)
        assert shown.status_code == 200 and shown.get_json() == web


def test_during_a_rolling_deploy_both_dynos_of_a_name_are_listed_newest_first(api: Api, alice: User, shop: str,
                                                                             database: Database) -> None:
    old = add_dyno(database, shop, "web.1")
    deploy(api, alice, shop)
    new = add_dyno(database, shop, "web.1", state="starting")
    dynos = listed(api, alice, shop)
    versions = [d["release"]["version"] for d in dynos]
    assert [(d["name"], d["state"]) for d in dynos] == [("web.1", "starting"), ("web.1", "up")]
    assert versions[0] == versions[1] + 1
    assert api.get(f"/apps/{shop}/dynos/web.1", alice).get_json()["id"] == new
    assert api.get(f"/apps/{shop}/dynos/{old}", alice).get_json()["release"]["version"] == versions[1]


@pytest.mark.parametrize("ref", ["web.3", "web.9", "clock.1", "00000000-0000-4000-8000-000000000000", "web.x"])
def test_a_dyno_that_does_not_run_is_not_found(api: Api, alice: User, shop: str, database: Database,
                                               ref: str) -> None:
    add_dyno(database, shop, "web.1")
    add_dyno(database, shop, "web.3", state="down")
    missing = api.get(f"/apps/{shop}/dynos/{ref}", alice)
    assert missing.status_code == 404
    assert missing.get_json()["id"] == "not_found" and ref in missing.get_json()["message"]


@pytest.mark.parametrize("method, path, recorded, line", [
    ("DELETE", "/dynos", ("restart", None, None), "Restart by alice@example.com"),
    ("DELETE", "/dynos/web.1", ("restart", "web", "web.1"), "Restart web.1 by alice@example.com"),
    ("DELETE", "/dynos/web", ("restart", "web", None), "Restart web by alice@example.com"),
    ("DELETE", "/formations/web", ("restart", "web", None), "Restart web by alice@example.com"),
    ("DELETE", "/formations/worker", ("restart", "worker", None), "Restart worker by alice@example.com"),
    ("POST", "/dynos/web.1/actions/stop", ("stop", "web", "web.1"), "Stop web.1 by alice@example.com"),
    ("POST", "/dynos/web/actions/stop", ("stop", "web", None), "Stop web by alice@example.com"),
    ("POST", "/formations/web/actions/stop", ("stop", "web", None), "Stop web by alice@example.com"),
])
def test_restart_and_stop_are_recorded_for_the_runner_logged_and_nudge_it(
        api: Api, alice: User, shop: str, database: Database, runner: RunnerListener, method: str, path: str,
        recorded: tuple[str, str | None, str | None], line: str) -> None:
    web1 = add_dyno(database, shop, "web.1")
    lines_before = api_lines(database, shop)
    answer = api.request(method, f"/apps/{shop}{path}", alice)
    assert (answer.status_code, answer.get_json()) == (202, {})
    assert [(a["action"], a["type"], a["name"], a["user_id"], a["done_at"]) for a in actions(database, shop)] == [
        (*recorded, alice.id, None)]
    assert api_lines(database, shop) == [*lines_before, line]
    assert runner.wait(5) >= 1
    # The API never touches the dyno: the runner replaces it.
    assert api.get(f"/apps/{shop}/dynos/web.1", alice).get_json()["id"] == web1


def test_a_dyno_is_also_restarted_by_its_id(api: Api, alice: User, shop: str, database: Database) -> None:
    web2 = add_dyno(database, shop, "web.2")
    assert api.delete(f"/apps/{shop}/dynos/{web2}", alice).status_code == 202
    assert [(a["action"], a["name"]) for a in actions(database, shop)] == [("restart", "web.2")]


def test_one_off_dynos_are_stopped_never_restarted(api: Api, alice: User, shop: str, database: Database) -> None:
    for _ in range(3):
        assert api.post(f"/apps/{shop}/dynos", alice, json={"command": "sleep 100"}).status_code == 201
    assert api.delete(f"/apps/{shop}/dynos/run.1", alice).status_code == 202
    assert api.post(f"/apps/{shop}/dynos/run.2/actions/stop", alice).status_code == 202
    assert [d["name"] for d in listed(api, alice, shop)] == ["run.3"]
    assert api.post(f"/apps/{shop}/formations/run/actions/stop", alice).status_code == 202
    assert listed(api, alice, shop) == []
    assert actions(database, shop) == []  # nothing for the runner: one-offs are the rendezvous host's
    assert api_lines(database, shop)[-3:] == ["Stop run.1 by alice@example.com", "Stop run.2 by alice@example.com",
                                              "Stop run by alice@example.com"]


@pytest.mark.parametrize("method, path, status", [
    ("DELETE", "/dynos/web.9", 404),                    # not running
    ("DELETE", "/dynos/web.3", 404),                    # down: replaced already
    ("DELETE", "/dynos/clock", 404),                    # no such process type
    ("DELETE", "/formations/clock", 404),
    ("POST", "/dynos/clock.1/actions/stop", 404),
    ("POST", "/formations/clock/actions/stop", 404),
    ("DELETE", "/dynos/00000000-0000-4000-8000-000000000000", 404),
    ("DELETE", "/dynos/web.x", 422),                    # not type.N
    ("DELETE", "/dynos/web.1.2", 422),
    ("DELETE", "/dynos/web.0", 422),
    ("DELETE", "/dynos/.1", 422),
    ("DELETE", "/dynos/we$b", 422),                     # a type with bad characters
    ("DELETE", "/dynos/web%201", 422),
    ("DELETE", "/dynos/" + "w" * 64, 422),
    ("DELETE", "/formations/web.1", 422),               # a name is not a type
    ("DELETE", "/formations/we;b", 422),
    ("POST", "/dynos/web.1%0A/actions/stop", 422),
    ("POST", "/formations/%2E%2E/actions/stop", 422),
    ("POST", "/dynos/../actions/stop", 422),
])
def test_unknown_or_bad_targets_are_refused_in_herokus_shape_and_nothing_is_recorded(
        api: Api, alice: User, shop: str, database: Database, runner: RunnerListener, method: str, path: str,
        status: int) -> None:
    add_dyno(database, shop, "web.1")
    add_dyno(database, shop, "web.3", state="down")
    lines_before = api_lines(database, shop)
    refused = api.request(method, f"/apps/{shop}{path}", alice)
    assert refused.status_code == status, refused.get_data(as_text=True)
    assert set(refused.get_json()) >= {"id", "message"}
    assert refused.get_json()["id"] == ("not_found" if status == 404 else "invalid_params")
    assert actions(database, shop) == [] and api_lines(database, shop) == lines_before
    assert runner.wait(0.2) == 0


def test_collaborators_may_restart_others_find_no_app(api: Api, alice: User, bob: User, shop: str,
                                                      database: Database) -> None:
    add_dyno(database, shop, "web.1")
    assert api.post(f"/apps/{shop}/collaborators", alice, json={"user": bob.email}).status_code == 201
    assert api.delete(f"/apps/{shop}/dynos/web.1", bob).status_code == 202
    assert [(a["name"], a["user_id"]) for a in actions(database, shop)] == [("web.1", bob.id)]
    assert api_lines(database, shop)[-1] == "Restart web.1 by bob@example.com"
    mallory = api.make_user("mallory@example.com")
    for method, path in [("GET", "/dynos"), ("GET", "/dynos/web.1"), ("DELETE", "/dynos"),
                         ("DELETE", "/dynos/web.1"), ("DELETE", "/formations/web"),
                         ("POST", "/dynos/web.1/actions/stop"), ("POST", "/formations/web/actions/stop")]:
        refused = api.request(method, f"/apps/{shop}{path}", mallory)
        assert refused.status_code == 404 and refused.get_json()["id"] == "not_found", (method, path)
    assert len(actions(database, shop)) == 1


def test_the_runner_is_nudged_only_once_the_request_is_committed(api: Api, alice: User, shop: str,
                                                                database: Database, settings: Settings,
                                                                runner: RunnerListener) -> None:
    add_dyno(database, shop, "web.1")
    with database.session() as session:
        shop_app = session.scalar(select(App).where(App.name == shop))
        dyno_actions.request(session, settings.data_dir, shop_app, session.get_one(Account, alice.id), "restart",
                             "web.1")
        assert runner.wait(0.3) == 0  # recorded but not committed: the runner could not see it yet
        session.rollback()
    assert runner.wait(0.3) == 0 and actions(database, shop) == []
    with database.transaction() as session:
        shop_app = session.scalar(select(App).where(App.name == shop))
        dyno_actions.request(session, settings.data_dir, shop_app, session.get_one(Account, alice.id), "stop",
                             "web")
        assert runner.wait(0.3) == 0
    assert runner.wait(5) == 1
    assert [(a["action"], a["type"]) for a in actions(database, shop)] == [("stop", "web")]
