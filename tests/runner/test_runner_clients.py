"""The official Heroku CLI and heroku3, unmodified, against a live Berth whose runner runs the
dynos: scaling starts real dynos, `ps` shows their states, restarts replace them, maintenance mode
puts the router's page up."""
from __future__ import annotations

import re

import pytest

from tests.heroku3_client import heroku3_client
from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.runner.conftest import RunPlatform, eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli(run_platform: RunPlatform, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(run_platform.built.server.url, run_platform.built.key, tmp_path_factory.mktemp("home"))


def test_heroku_cli_scales_shows_restarts_and_puts_up_maintenance(run_platform: RunPlatform, cli: HerokuCLI) -> None:
    app = "run-heroku-cli"
    run_platform.built.make_app(app)
    run_platform.deploy(app, processes={"web": "python3 server.py", "worker": "sleep 600"})
    cli.ok("ps:scale", "web=2", "worker=1", "-a", app)
    eventually(lambda: run_platform.served_by(app, 20) == {"web.1", "web.2"}, what="two web dynos serving")
    shown = eventually(lambda: (lambda out: out if out.count(": up ") == 3 else None)(cli.ok("ps", "-a", app)),
                       what="heroku ps showing three dynos up")
    assert "=== web (Standard-1X): python3 server.py (2)" in shown and "=== worker (Standard-1X): sleep 600 (1)" in shown
    assert re.search(r"^worker\.1: up \d{4}/\d\d/\d\d", shown, re.M), shown
    before = {row.name: row.backend_id for row in run_platform.dynos(app)}
    cli.ok("ps:restart", "worker", "-a", app)
    eventually(lambda: {row.name: row.backend_id for row in run_platform.dynos(app) if row.state == "up"}.get("worker.1")
               not in (None, before["worker.1"]), what="worker.1 replaced")
    assert {row.name: row.backend_id for row in run_platform.dynos(app)}["web.1"] == before["web.1"]  # only worker
    cli.ok("maintenance:on", "-a", app)
    eventually(lambda: "Offline for Maintenance" in run_platform.get(app).text, what="the maintenance page")
    cli.ok("maintenance:off", "-a", app)
    eventually(lambda: run_platform.status(app) == 200, what="serving again")
    cli.ok("ps:scale", "web=0", "worker=0", "-a", app)
    eventually(lambda: run_platform.dynos(app) == [], what="every dyno stopped")


def test_heroku3_scales_and_restarts(run_platform: RunPlatform) -> None:
    app_name = "run-heroku3"
    run_platform.built.make_app(app_name)
    run_platform.deploy(app_name)
    client = heroku3_client(run_platform.built.server.url, run_platform.built.key)
    app = client.apps()[app_name]
    app.process_formation()["web"].scale(2)
    eventually(lambda: run_platform.served_by(app_name, 20) == {"web.1", "web.2"}, what="two dynos serving")
    eventually(lambda: sorted((dyno.name, dyno.state) for dyno in app.dynos()) == [("web.1", "up"), ("web.2", "up")],
               what="heroku3 listing both up")
    before = {row.backend_id for row in run_platform.dynos(app_name)}
    app.restart()
    eventually(lambda: {row.backend_id for row in run_platform.dynos(app_name) if row.state == "up"}.isdisjoint(before)
               and len(run_platform.dynos(app_name)) == 2, what="both dynos replaced")
