"""berth ps, ps:scale, ps:type and ps:resize against a live server."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Iterator

import pytest

from berth.db import Database, utcnow
from tests.dyno_api.rows import actions, add_dyno, api_lines, database_of
from tests.formation.deploying import deploy_over_http

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, Server


def _formation(server: Server, app: str) -> dict[str, tuple[int, str]]:
    return {e["type"]: (e["quantity"], e["size"]) for e in server.api("GET", f"/apps/{app}/formation").json()}


def test_scale_absolute_relative_and_with_a_size(berth: Berth, server: Server, app_name: str) -> None:
    deploy_over_http(server.api, app_name)
    shown = berth("ps:scale", "-a", app_name)
    assert (shown.returncode, shown.stdout) == (0, "web=1:Standard-1X worker=0:Standard-1X\n"), shown.stderr
    scaled = berth("ps:scale", "web=2", "worker+1:standard-2X", "-a", app_name)
    assert scaled.returncode == 0, scaled.stderr
    assert scaled.stdout == "Scaling dynos... done, now running web at 2:Standard-1X, worker at 1:Standard-2X\n"
    assert _formation(server, app_name) == {"web": (2, "Standard-1X"), "worker": (1, "Standard-2X")}
    assert berth("ps:scale", "web-1", "-a", app_name).returncode == 0
    assert _formation(server, app_name)["web"] == (1, "Standard-1X")


def test_scale_refusals_change_nothing(berth: Berth, server: Server, app_name: str,
                                       one_error_line: ErrorLine) -> None:
    deploy_over_http(server.api, app_name)
    before = _formation(server, app_name)
    usage = berth("ps:scale", "web=two", "-a", app_name)
    assert usage.returncode == 2 and "TYPE=N" in usage.stderr
    assert "clock" in one_error_line(berth("ps:scale", "clock=1", "-a", app_name))
    assert "100" in one_error_line(berth("ps:scale", "web=101", "-a", app_name))
    assert "standard-1x" in one_error_line(berth("ps:scale", "web=1:huge", "-a", app_name))
    assert _formation(server, app_name) == before


def test_an_app_without_code_has_no_process_types(berth: Berth, app_name: str, one_error_line: ErrorLine) -> None:
    assert "No process types on" in one_error_line(berth("ps:scale", "-a", app_name))
    assert "Procfile" in one_error_line(berth("ps", "-a", app_name))


def test_type_sets_every_type_or_some_and_resize_is_its_alias(berth: Berth, server: Server, app_name: str,
                                                               one_error_line: ErrorLine) -> None:
    deploy_over_http(server.api, app_name)
    every = berth("ps:type", "standard-2x", "-a", app_name)
    assert every.returncode == 0, every.stderr
    assert _formation(server, app_name) == {"web": (1, "Standard-2X"), "worker": (0, "Standard-2X")}
    lines = every.stdout.splitlines()
    assert lines[0] == f"Scaling dynos on {app_name}... done" and "=== Process Types" in lines
    assert "web     Standard-2X  1" in lines and "Standard-2X  1" in lines  # the totals
    assert berth("ps:resize", "worker=performance-m", "-a", app_name).returncode == 0
    assert _formation(server, app_name)["worker"] == (0, "Performance-M")
    assert "not found in process formation" in one_error_line(berth("ps:type", "clock=eco", "-a", app_name))
    assert _formation(server, app_name)["worker"] == (0, "Performance-M")


@pytest.fixture
def database(server: Server) -> Iterator[Database]:
    database = database_of(server.env)
    yield database
    database.write_engine.dispose()
    database.autocommit_engine.dispose()


def test_ps_shows_the_formation_and_says_when_no_dynos_run(berth: Berth, server: Server, app_name: str) -> None:
    deploy_over_http(server.api, app_name)
    shown = berth("ps", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["=== web (Standard-1X): gunicorn app:app (1)", "",
                                         "=== worker (Standard-1X): python worker.py (0)", "",
                                         f"No dynos on {app_name}."]


SINCE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{4} \(~ %s ago\)"


def test_ps_shows_each_dyno_grouped_by_command_with_its_state_and_since_when(
        berth: Berth, server: Server, app_name: str, database: Database) -> None:
    deploy_over_http(server.api, app_name)
    add_dyno(database, app_name, "web.2", state="starting", started=utcnow() - timedelta(seconds=20))
    add_dyno(database, app_name, "web.1", started=utcnow() - timedelta(minutes=3))
    add_dyno(database, app_name, "worker.1", state="crashed", command="python worker.py",
             started=utcnow() - timedelta(hours=2))
    add_dyno(database, app_name, "web.3", command="gunicorn old:app")  # an old release's, while a deploy rolls
    assert server.api("POST", f"/apps/{app_name}/dynos", json={"command": "sleep 60"}).status_code == 201
    shown = berth("ps", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    def up(name: str, state: str, ago: str) -> str:
        return re.escape(f"{name}: {state} ") + SINCE % ago

    patterns = [r"=== run: one-off processes \(1\)", up("run.1 (Standard-1X)", "starting", r"\d+s") + ": sleep 60",
                "", r"=== web \(Standard-1X\): gunicorn app:app \(1\)", up("web.1", "up", "3m"),
                up("web.2", "starting", r"2\ds"), "",
                r"=== web \(Standard-1X\): gunicorn old:app \(1\)", up("web.3", "up", r"\d+s"), "",
                r"=== worker \(Standard-1X\): python worker.py \(0\)", up("worker.1", "crashed", "2h"), ""]
    lines = shown.stdout.splitlines()
    assert len(lines) == len(patterns), shown.stdout
    for line, pattern in zip(lines, patterns):
        assert re.fullmatch(pattern, line), (line, pattern)
    as_json = json.loads(berth("ps", "-a", app_name, "--json").stdout)
    assert [d["name"] for d in as_json["dynos"]] == ["run.1", "web.1", "web.2", "web.3", "worker.1"]
    assert [e["type"] for e in as_json["formation"]] == ["web", "worker"]


def test_ps_restart_and_stop_ask_the_runner_and_say_so(berth: Berth, server: Server, app_name: str,
                                                       database: Database) -> None:
    deploy_over_http(server.api, app_name)
    add_dyno(database, app_name, "web.1")
    for args, said in [(("ps:restart",), f"Restarting all dynos on {app_name}... done"),
                       (("ps:restart", "web"), f"Restarting all web dynos on {app_name}... done"),
                       (("ps:restart", "web.1"), f"Restarting dyno web.1 on {app_name}... done"),
                       (("ps:stop", "web.1"), f"Stopping dyno web.1 on {app_name}... done"),
                       (("ps:stop", "web"), f"Stopping all web dynos on {app_name}... done")]:
        done = berth(*args, "-a", app_name)
        assert (done.returncode, done.stdout) == (0, said + "\n"), done.stderr
    assert [(a["action"], a["type"], a["name"]) for a in actions(database, app_name)] == [
        ("restart", None, None), ("restart", "web", None), ("restart", "web", "web.1"), ("stop", "web", "web.1"),
        ("stop", "web", None)]
    assert api_lines(database, app_name)[-5:] == [
        "Restart by dev@example.com", "Restart web by dev@example.com", "Restart web.1 by dev@example.com",
        "Stop web.1 by dev@example.com", "Stop web by dev@example.com"]


def test_ps_restart_and_stop_refusals_exit_non_zero_and_record_nothing(
        berth: Berth, server: Server, app_name: str, database: Database, one_error_line: ErrorLine) -> None:
    deploy_over_http(server.api, app_name)
    add_dyno(database, app_name, "web.1")
    assert "Couldn't find that dyno (web.7)" in one_error_line(berth("ps:restart", "web.7", "-a", app_name))
    assert "Couldn't find that process type (clock)" in one_error_line(berth("ps:stop", "clock", "-a", app_name))
    assert "Not a dyno name" in one_error_line(berth("ps:stop", "web.one", "-a", app_name))
    assert "Not a process type" in one_error_line(berth("ps:restart", "we$b", "-a", app_name))
    usage = berth("ps:stop", "-a", app_name)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    assert actions(database, app_name) == []


def test_ps_shows_the_one_off_dynos_of_code_without_process_types(berth: Berth, server: Server,
                                                                   app_name: str) -> None:
    deploy_over_http(server.api, app_name, {})  # code without a Procfile: no formation at all
    assert server.api("POST", f"/apps/{app_name}/dynos", json={"command": "sleep 60"}).status_code == 201
    shown = berth("ps", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "=== run: one-off processes (1)" and len(lines) == 3, shown.stdout
    assert re.fullmatch(re.escape("run.1 (Standard-1X): starting ") + SINCE % r"\d+s" + ": sleep 60", lines[1])
    as_json = json.loads(berth("ps", "-a", app_name, "--json").stdout)
    assert as_json["formation"] == [] and [d["name"] for d in as_json["dynos"]] == ["run.1"]


def test_ps_shows_a_waiting_release_dyno_which_ps_stop_fails_and_ps_restart_refuses(
        berth: Berth, server: Server, app_name: str, one_error_line: ErrorLine) -> None:
    deploy_over_http(server.api, app_name, {"web": "gunicorn app:app", "release": "python migrate.py"})
    shown = berth("ps", "-a", app_name)  # no builder here: its release phase waits, as release.1
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:2] == ["=== release (Standard-1X): python migrate.py (1)", lines[1]], shown.stdout
    assert re.fullmatch(re.escape("release.1: starting ") + SINCE % r"\d+s", lines[1]), lines[1]
    assert len(lines) == 3  # the pending release's process types are not the formation's yet
    refused = one_error_line(berth("ps:restart", "-d", "release.1", "-a", app_name))
    assert "cannot be restarted" in refused and "heroku ps:stop release.1" in refused
    stopped = berth("ps:stop", "--dyno-name", "release.1", "-a", app_name)
    assert (stopped.returncode, stopped.stdout) == (0, f"Stopping dyno release.1 on {app_name}... done\n")
    assert server.api("GET", f"/apps/{app_name}/dynos").json() == []
    assert server.api("GET", f"/apps/{app_name}/dynos/release.1").json()["state"] == "down"


def test_ps_restart_and_stop_take_the_heroku_clis_flags(berth: Berth, server: Server, app_name: str,
                                                        database: Database, one_error_line: ErrorLine) -> None:
    deploy_over_http(server.api, app_name)
    add_dyno(database, app_name, "web.1")
    for args, said in [(("ps:restart", "-d", "web.1"), f"Restarting dyno web.1 on {app_name}... done"),
                       (("ps:restart", "--process-type", "web"), f"Restarting all web dynos on {app_name}... done"),
                       (("ps:stop", "--dyno-name", "web.1"), f"Stopping dyno web.1 on {app_name}... done"),
                       (("ps:stop", "-p", "web"), f"Stopping all web dynos on {app_name}... done")]:
        done = berth(*args, "-a", app_name)
        assert (done.returncode, done.stdout) == (0, said + "\n"), done.stderr
    assert [(a["action"], a["type"], a["name"]) for a in actions(database, app_name)] == [
        ("restart", "web", "web.1"), ("restart", "web", None), ("stop", "web", "web.1"), ("stop", "web", None)]
    for args in (("ps:stop", "web.1", "-p", "web"), ("ps:restart", "-d", "web.1", "--process-type", "web")):
        twice = berth(*args, "-a", app_name)
        assert twice.returncode == 2 and "Name what to act on once" in twice.stderr, twice.stderr
    assert "Couldn't find that process type (clock)" in one_error_line(berth("ps:stop", "-p", "clock", "-a", app_name))
    assert len(actions(database, app_name)) == 4
