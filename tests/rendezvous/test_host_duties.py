"""The rendezvous host's duties besides attaching, against the real database and sandbox: a stop
request reaches a running dyno (SIGTERM, SIGKILL and R12 after the grace), the sweep ends dynos
nobody attached to or that outlived their time to live, and a dyno that cannot start (no stack)
ends `crashed` saying why, on the client's connection or in the app's log."""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update

from berth.config import Settings
from berth.db import Database
from berth.platform.logs import store
from berth.platform.models import App, OneOffDyno
from berth.platform.rendezvous.bridge import GREETING
from berth.platform.rendezvous.host import DatabaseTickets
from berth.platform.slug_runs import SlugRunner
from berth.platform.slug_store import local_store
from tests.api.test_slugs import uploaded_slug
from tests.conftest import Api, User
from tests.rendezvous.conftest import dial, read_all
from tests.rendezvous.test_attach_from_api import db_server  # noqa: F401  (a server over DatabaseTickets)


@pytest.fixture
def released(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "duties"}).status_code == 201
    slug = uploaded_slug(api, alice, "duties", "v1")
    assert api.post("/apps/duties/releases", alice, json={"slug": slug["id"]}).status_code == 201
    return "duties"


def database(app: Flask) -> Database:
    return app.extensions["berth.database"]


def log_lines(app: Flask, name: str) -> list[str]:
    with database(app).transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == name))
        return [store.format_line(line).split(" ", 1)[1] for line in store.read(session, app_id, limit=100)]


def backdate(app: Flask, dyno_name: str, by: timedelta) -> None:
    with database(app).transaction() as session:
        number = int(dyno_name.split(".")[1])
        dyno = session.scalars(select(OneOffDyno).where(OneOffDyno.number == number)).one()
        session.execute(update(OneOffDyno).where(OneOffDyno.id == dyno.id)
                        .values(created_at=dyno.created_at - by))


def wait_for_state(api: Api, user: User, app: str, dyno: str, states: tuple[str, ...], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = api.get(f"/apps/{app}/dynos/{dyno}", user).get_json()
        if shown["state"] in states or time.monotonic() > deadline:
            return shown
        time.sleep(0.1)


def test_an_attached_dyno_never_attached_to_is_swept_down_and_no_longer_listed(
        api: Api, alice: User, app: Flask, settings: Settings, released: str, tmp_path: Path) -> None:
    body = api.post(f"/apps/{released}/dynos", alice, json={"command": "bash", "attach": True}).get_json()
    tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs"))
    tickets.sweep()
    assert [d["name"] for d in api.get(f"/apps/{released}/dynos", alice).get_json()] == [body["name"]]  # in time
    backdate(app, body["name"], timedelta(minutes=6))
    tickets.sweep()
    assert api.get(f"/apps/{released}/dynos", alice).get_json() == []
    assert api.get(f"/apps/{released}/dynos/{body['name']}", alice).get_json()["state"] == "down"
    assert "heroku[run.1]: Error R13 (Attach error) -> Failed to attach to process" in log_lines(app, released)


def test_a_dyno_left_running_past_its_time_to_live_is_swept_crashed(
        api: Api, alice: User, app: Flask, settings: Settings, released: str, tmp_path: Path) -> None:
    body = api.post(f"/apps/{released}/dynos", alice, json={"command": "sleep 100", "time_to_live": 60}).get_json()
    with database(app).transaction() as session:  # claimed by a host that then died
        session.execute(update(OneOffDyno).values(state="up"))
    tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs"))
    tickets.sweep()
    assert api.get(f"/apps/{released}/dynos/{body['name']}", alice).get_json()["state"] == "up"
    backdate(app, body["name"], timedelta(minutes=4))
    tickets.sweep()
    assert api.get(f"/apps/{released}/dynos/{body['name']}", alice).get_json()["state"] == "crashed"
    assert api.get(f"/apps/{released}/dynos", alice).get_json() == []
    assert "heroku[run.1]: Process outlived its time to live of 60 s and was stopped" in log_lines(app, released)


@pytest.mark.slow
def test_a_stop_request_ends_a_running_dyno_with_sigkill_after_the_grace(
        api: Api, alice: User, app: Flask, settings: Settings, stack: Path, released: str, tmp_path: Path) -> None:
    tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs", stack=stack),
                              stop_grace=1)
    body = api.post(f"/apps/{released}/dynos", alice, json={"command": "trap '' TERM; echo started; sleep 600"}).get_json()
    runner = threading.Thread(target=tickets.run_next_detached)
    runner.start()
    deadline = time.monotonic() + 30
    while "app[run.1]: started" not in log_lines(app, released):
        assert time.monotonic() < deadline, log_lines(app, released)
        time.sleep(0.1)
    assert tickets.carry_out_stops() == []  # nobody asked yet
    assert api.delete(f"/apps/{released}/dynos/{body['name']}", alice).status_code == 202
    assert tickets.carry_out_stops() == ["run.1"]
    runner.join(30)
    assert not runner.is_alive()
    shown = api.get(f"/apps/{released}/dynos/run.1", alice).get_json()
    assert (shown["state"], shown["exit_code"]) == ("down", 137)
    lines = log_lines(app, released)
    expected = ["heroku[run.1]: Stopping all processes with SIGTERM",
                "heroku[run.1]: Error R12 (Exit timeout) -> At least one process failed to exit within 1 seconds "
                "of SIGTERM",
                "heroku[run.1]: Stopping remaining processes with SIGKILL",
                "heroku[run.1]: Process exited with status 137",
                "heroku[run.1]: State changed from up to down"]
    assert lines[-len(expected):] == expected
    assert tickets.running() == []


@pytest.fixture
def no_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where `make setup` never built the stack."""
    monkeypatch.setenv("BERTH_STACK_DIR", str(tmp_path / "no-stack"))


@pytest.mark.slow
def test_without_a_stack_an_attached_dyno_crashes_and_its_client_is_told(
        api: Api, alice: User, app: Flask, settings: Settings, released: str, ca, no_stack: None,
        tmp_path: Path, db_server) -> None:  # noqa: F811
    db_server.tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs"))
    body = api.post(f"/apps/{released}/dynos", alice, json={"command": "echo hi", "attach": True}).get_json()
    with dial(db_server, ca) as conn:
        conn.sendall(body["attach_url"].rsplit("/", 1)[1].encode() + b"\r\n")
        output = read_all(conn)
    assert output.startswith(GREETING)
    assert b"Error: run.1 could not start: this Berth cannot run dynos yet because its stack is not built" in output
    assert api.get(f"/apps/{released}/dynos/run.1", alice).get_json()["state"] == "crashed"
    assert "heroku[run.1]: State changed from starting to crashed" in log_lines(app, released)


def test_without_a_stack_a_detached_dyno_crashes_and_says_so_in_the_log(
        api: Api, alice: User, app: Flask, settings: Settings, released: str, no_stack: None, tmp_path: Path) -> None:
    api.post(f"/apps/{released}/dynos", alice, json={"command": "echo hi"})
    tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs"))
    assert tickets.run_next_detached()
    assert api.get(f"/apps/{released}/dynos/run.1", alice).get_json()["state"] == "crashed"
    lines = log_lines(app, released)
    assert ("heroku[run.1]: Process could not start: this Berth cannot run dynos yet because its stack is not "
            "built (the operator runs `make setup`).") in lines
    assert lines[-1] == "heroku[run.1]: State changed from starting to crashed"


def test_make_run_starts_the_rendezvous_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from berth.serve import commands

    monkeypatch.setenv("BERTH_DATA_DIR", str(tmp_path / "data"))
    assert commands()["rendezvous"] == [sys.executable, "-m", "berth.rendezvous"]


def test_a_host_starting_ends_the_dynos_its_predecessor_ran(api: Api, alice: User, app: Flask,
                                                           released: str) -> None:
    from berth.platform import one_off_dynos

    api.post(f"/apps/{released}/dynos", alice, json={"command": "sleep 100"})
    api.post(f"/apps/{released}/dynos", alice, json={"command": "bash", "attach": True})
    with database(app).transaction() as session:
        session.execute(update(OneOffDyno).where(OneOffDyno.number == 1).values(state="up"))
        assert [dyno.name for dyno in one_off_dynos.orphan_running(session)] == ["run.1"]
    assert api.get(f"/apps/{released}/dynos/run.1", alice).get_json()["state"] == "crashed"
    assert api.get(f"/apps/{released}/dynos/run.2", alice).get_json()["state"] == "starting"  # may still attach


def test_a_host_starting_leaves_the_dynos_another_nodes_host_runs(api: Api, alice: User, app: Flask,
                                                                   released: str) -> None:
    """Several nodes each run a rendezvous host over one control plane: node-b's restart must not end
    what node-a runs (node-a's own restart still does)."""
    from berth.platform import one_off_dynos

    api.post(f"/apps/{released}/dynos", alice, json={"command": "sleep 100"})
    api.post(f"/apps/{released}/dynos", alice, json={"command": "sleep 100"})
    with database(app).transaction() as session:
        assert one_off_dynos.claim_detached(session, "node-a").name == "run.1"  # type: ignore[union-attr]
        assert one_off_dynos.claim_detached(session, "node-b").name == "run.2"  # type: ignore[union-attr]
        assert [dyno.name for dyno in one_off_dynos.orphan_running(session, "node-b")] == ["run.2"]
    assert api.get(f"/apps/{released}/dynos/run.1", alice).get_json()["state"] == "up"  # node-a's, still running
    assert api.get(f"/apps/{released}/dynos/run.2", alice).get_json()["state"] == "crashed"
    with database(app).transaction() as session:
        assert [dyno.name for dyno in one_off_dynos.orphan_running(session, "node-a")] == ["run.1"]


@pytest.mark.slow
def test_the_host_starts_a_detached_dyno_when_nudged_and_stops_its_runs_when_it_shuts_down(
        api: Api, alice: User, app: Flask, settings: Settings, stack: Path, released: str, tmp_path: Path) -> None:
    from berth.platform.rendezvous.service import OneOffHost

    tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs", stack=stack))
    host = OneOffHost(tickets, settings.data_dir, poll_seconds=60)  # only a nudge can wake it in time
    stop = threading.Event()
    serving = threading.Thread(target=host.serve, args=(stop,))
    serving.start()
    try:
        time.sleep(0.5)  # its first round is over: now it waits
        asked = time.monotonic()
        api.post(f"/apps/{released}/dynos", alice, json={"command": "echo up; sleep 600"})
        while "app[run.1]: up" not in log_lines(app, released):
            assert time.monotonic() - asked < 10, log_lines(app, released)
            time.sleep(0.05)
    finally:
        stop.set()
        serving.join(30)
    assert not serving.is_alive()
    shown = api.get(f"/apps/{released}/dynos/run.1", alice).get_json()
    assert (shown["state"], shown["exit_code"]) == ("down", 143)
    with database(app).transaction() as session:
        why = session.scalars(select(OneOffDyno.ended_because)).one()
    assert why == "run.1 was stopped because the rendezvous host shut down (exited with status 143)"


@pytest.mark.slow
def test_a_detached_dyno_past_its_time_to_live_is_stopped_and_crashed(
        api: Api, alice: User, app: Flask, settings: Settings, stack: Path, released: str, tmp_path: Path) -> None:
    api.post(f"/apps/{released}/dynos", alice, json={"command": "echo long; sleep 600", "time_to_live": 2})
    tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs", stack=stack))
    started = time.monotonic()
    assert tickets.run_next_detached()
    assert time.monotonic() - started < 20
    assert api.get(f"/apps/{released}/dynos/run.1", alice).get_json()["state"] == "crashed"
    lines = log_lines(app, released)
    assert lines[-2:] == ["heroku[run.1]: Process timed out and was stopped",
                          "heroku[run.1]: State changed from up to crashed"]


@pytest.mark.slow
def test_a_one_off_dyno_runs_within_its_sizes_process_limit(
        api: Api, alice: User, app: Flask, settings: Settings, stack: Path, released: str, tmp_path: Path) -> None:
    forks = ("import os, time\ncount = 0\ntry:\n    for _ in range(300):\n        if os.fork() == 0:\n"
             "            time.sleep(3)\n            os._exit(0)\n        count += 1\nexcept OSError:\n    pass\n"
             'print("forked", count)\n')
    api.post(f"/apps/{released}/dynos", alice, json={"command": f"python3 -c '{forks}'", "size": "eco"})
    tickets = DatabaseTickets(database(app), SlugRunner(local_store(settings.data_dir), tmp_path / "runs", stack=stack))
    assert tickets.run_next_detached()
    counts = [int(line.rsplit(" ", 1)[1]) for line in log_lines(app, released) if "app[run.1]: forked" in line]
    assert counts and 200 < counts[0] < 256, log_lines(app, released)  # Eco: 256 processes and threads
