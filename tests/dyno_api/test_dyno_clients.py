"""The dynos through unmodified clients against one live Berth (gunicorn): the official Heroku CLI's
ps, ps:restart (all, a type, a dyno) and ps:stop, and heroku3's dynos, restart and a dyno's
restart/kill. Dyno rows are written as the runner writes them; the tests read back the DynoAction
rows and app[api] lines the clients' calls left."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from functools import partial
from typing import Iterator

import heroku3
import pytest
import requests
from heroku3.models.dyno import RestartRunException

from berth.db import Database, utcnow
from tests.dyno_api.rows import actions, add_dyno, api_lines, database_of
from tests.formation.deploying import deploy_over_http
from tests.heroku3_client import heroku3_client
from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
EMAIL = "operator@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("dyno-clients")) as live:
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.create_user(EMAIL)


@pytest.fixture(scope="module")
def database(server: LiveServer, key: str) -> Iterator[Database]:
    database = database_of(server.env)
    yield database
    database.write_engine.dispose()
    database.autocommit_engine.dispose()


@pytest.fixture
def deployed(server: LiveServer, key: str, database: Database) -> Iterator[str]:
    """An app with code, running web.1 (up 3 minutes), web.2 (starting) and worker.1 (crashed)."""
    name = "d" + uuid.uuid4().hex[:12]
    assert server.api("POST", "/apps", key, json={"name": name}).status_code == 201
    deploy_over_http(partial(server.api, token=key), name)
    add_dyno(database, name, "web.1", started=utcnow() - timedelta(minutes=3))
    add_dyno(database, name, "web.2", state="starting")
    add_dyno(database, name, "worker.1", state="crashed", command="python worker.py")
    yield name
    server.api("DELETE", f"/apps/{name}", key)


@pytest.fixture(scope="module")
def cli(server: LiveServer, key: str, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(server.url, key, tmp_path_factory.mktemp("home"))


def test_heroku_ps_shows_the_dynos_and_their_states(cli: HerokuCLI, server: LiveServer, key: str,
                                                    deployed: str) -> None:
    assert server.api("POST", f"/apps/{deployed}/dynos", key, json={"command": "sleep 60"}).status_code == 201
    shown = cli.ok("ps", "-a", deployed)
    when = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{4}"
    since = when + r" \(~ \d+[smh] ago\)"
    assert "=== web (Standard-1X): gunicorn app:app (2)" in shown
    assert "=== worker (Standard-1X): python worker.py (1)" in shown
    assert "=== run: one-off processes (1)" in shown
    assert re.search(rf"^web\.1: up {when} \(~ 3m ago\)$", shown, re.M), shown
    assert re.search(rf"^web\.2: starting {since}$", shown, re.M), shown
    assert re.search(rf"^worker\.1: crashed {since}$", shown, re.M), shown
    assert re.search(rf"^run\.1 \(Standard-1X\): starting {since}: sleep 60$", shown, re.M), shown


def test_heroku_ps_restart_and_stop_record_requests_for_the_runner(cli: HerokuCLI, database: Database,
                                                                   deployed: str) -> None:
    for args, said in [(("ps:restart",), "Restarting all dynos"),
                       (("ps:restart", "web"), "Restarting dyno web"),        # DELETE /dynos/web: a type
                       (("ps:restart", "web.1"), "Restarting dyno web.1"),
                       (("ps:restart", "-p", "worker"), "Restarting all worker dynos"),
                       (("ps:stop", "web.1"), "Stopping dyno web.1"),
                       (("ps:stop", "-p", "worker"), "Stopping all worker dynos")]:
        done = cli.run(*args, "-a", deployed)
        assert done.returncode == 0, done.stderr
        assert said in done.stderr and "done" in done.stderr, done.stderr
    assert [(a["action"], a["type"], a["name"]) for a in actions(database, deployed)] == [
        ("restart", None, None), ("restart", "web", None), ("restart", "web", "web.1"), ("restart", "worker", None),
        ("stop", "web", "web.1"), ("stop", "worker", None)]
    assert api_lines(database, deployed)[-6:] == [f"{line} by {EMAIL}" for line in (
        "Restart", "Restart web", "Restart web.1", "Restart worker", "Stop web.1", "Stop worker")]


def test_heroku_ps_refusals_exit_non_zero_with_the_message(cli: HerokuCLI, database: Database,
                                                           deployed: str) -> None:
    missing = cli.run("ps:restart", "web.9", "-a", deployed)
    assert missing.returncode != 0 and "Couldn't find that dyno (web.9)" in missing.stderr
    unknown = cli.run("ps:stop", "-p", "clock", "-a", deployed)
    assert unknown.returncode != 0 and "Couldn't find that process type (clock)" in unknown.stderr
    bad = cli.run("ps:stop", "web.one", "-a", deployed)
    assert bad.returncode != 0 and "Not a dyno name" in bad.stderr
    assert actions(database, deployed) == []


def test_heroku_ps_restart_and_stop_with_the_dyno_name_and_process_type_flags(
        cli: HerokuCLI, server: LiveServer, key: str, database: Database, deployed: str) -> None:
    for command in ("sleep 60", "sleep 61"):
        assert server.api("POST", f"/apps/{deployed}/dynos", key, json={"command": command}).status_code == 201
    for args, said in [(("ps:restart", "--dyno-name", "web.1"), "Restarting dyno web.1"),
                       (("ps:restart", "-d", "worker.1"), "Restarting dyno worker.1"),
                       (("ps:restart", "--process-type", "web"), "Restarting all web dynos"),
                       (("ps:stop", "-d", "web.2"), "Stopping dyno web.2"),
                       (("ps:stop", "--process-type", "worker"), "Stopping all worker dynos"),
                       (("ps:stop", "--dyno-name", "run.1"), "Stopping dyno run.1"),
                       (("ps:stop", "-p", "run"), "Stopping all run dynos")]:
        done = cli.run(*args, "-a", deployed)
        assert done.returncode == 0, done.stderr
        assert said in done.stderr and "done" in done.stderr and "deprecated" not in done.stderr, done.stderr
    assert [(a["action"], a["type"], a["name"]) for a in actions(database, deployed)] == [
        ("restart", "web", "web.1"), ("restart", "worker", "worker.1"), ("restart", "web", None),
        ("stop", "web", "web.2"), ("stop", "worker", None)]  # one-off dynos are not the runner's
    assert server.api("GET", f"/apps/{deployed}/dynos/run.1", key).json()["state"] == "down"
    assert server.api("GET", f"/apps/{deployed}/dynos/run.2", key).json()["state"] == "down"
    assert api_lines(database, deployed)[-4:] == [f"Stop web.2 by {EMAIL}", f"Stop worker by {EMAIL}",
                                                  f"Stop run.1 by {EMAIL}", f"Stop run by {EMAIL}"]
    missing = cli.run("ps:restart", "-d", "web.9", "-a", deployed)
    assert missing.returncode != 0 and "Couldn't find that dyno (web.9)" in missing.stderr
    both = cli.run("ps:stop", "-d", "web.1", "-p", "web", "-a", deployed)
    assert both.returncode != 0 and "cannot also be provided" in both.stderr, both.stderr
    assert len(actions(database, deployed)) == 5


@pytest.fixture
def h(server: LiveServer, key: str) -> heroku3.api.Heroku:
    return heroku3_client(server.url, key)


def test_heroku3_lists_restarts_and_kills_dynos(h: heroku3.api.Heroku, server: LiveServer, key: str,
                                                database: Database, deployed: str) -> None:
    assert server.api("POST", f"/apps/{deployed}/dynos", key, json={"command": "sleep 60"}).status_code == 201
    app = h.apps()[deployed]
    dynos = app.dynos()
    assert [(d.name, d.state, d.type) for d in dynos] == [
        ("run.1", "starting", "run"), ("web.1", "up", "web"), ("web.2", "starting", "web"),
        ("worker.1", "crashed", "worker")]
    named = {dyno.name: dyno for dyno in dynos}  # heroku3 keys dynos by id (and by type)
    web1 = named["web.1"]
    assert web1.release.version == 2 and web1.size == "Standard-1X" and web1.command == "gunicorn app:app"
    assert web1.updated_at is not None and web1.attach_url is None
    assert [d.name for d in dynos["web"]] == ["web.1", "web.2"] and dynos[web1.id] is web1
    assert web1.restart() is True
    assert named["worker.1"].kill() is True
    with pytest.raises(RestartRunException):
        named["run.1"].restart()
    app.restart()  # one DELETE per formation dyno
    assert app.kill_dyno("run.1") is True  # a one-off is stopped
    assert [(a["action"], a["name"]) for a in actions(database, deployed)] == [
        ("restart", "web.1"), ("restart", "worker.1"), ("restart", "web.1"), ("restart", "web.2"),
        ("restart", "worker.1")]
    assert [d.name for d in app.dynos()] == ["web.1", "web.2", "worker.1"]
    with pytest.raises(requests.HTTPError):
        app.kill_dyno("web.9")
    assert len(actions(database, deployed)) == 5
