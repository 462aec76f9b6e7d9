"""The release phase as a one-off dyno (`release.N`), through the API and a real job runner (the
builder's job type, draining in a thread while the test calls the API; the command runs in the
real sandbox): listed by the dyno API and the dashboard while it waits and runs, gone once it
ended; a stop fails its release with who stopped it (the previous release stays current); a
restart is refused; the rendezvous host never takes its rows. SQLite and PostgreSQL."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from flask import Flask
from sqlalchemy import select, update

from berth.db import utcnow
from berth.jobs.queue import JobState
from berth.platform import one_off_dynos
from berth.platform.models import OneOffDyno, ReleasePhase
from tests.conftest import Api, User
from tests.release_phase.test_release_phase import app_log, output_of, phases, releases_of, slug_with
from tests.web.conftest import Browser, text

pytestmark = pytest.mark.slow
LONG = "echo migrating; sleep 600"


def eventually(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)
    return found


def dynos(api: Api, user: User, app: str) -> list[tuple[str, str, str, str, str]]:
    return [(d["name"], d["type"], d["state"], d["command"], d["size"])
            for d in api.get(f"/apps/{app}/dynos", user).get_json()]


def release_rows(app: Flask) -> list[tuple[str, str, int | None]]:
    with app.extensions["berth.database"].session(write=False) as session:
        return [(row.name, row.state, row.exit_code) for row in session.scalars(
            select(OneOffDyno).where(OneOffDyno.type == "release").order_by(OneOffDyno.number))]


def test_a_running_release_phase_is_listed_and_a_stop_fails_its_release(
        app: Flask, api: Api, alice: User, stack: Path, tmp_path: Path) -> None:
    api.post("/apps", alice, json={"name": "shop"})
    worker, _ = phases(app, stack)
    made = api.post("/apps/shop/releases", alice, json={"slug": slug_with(api, alice, "shop", tmp_path, LONG)})
    assert made.get_json()["status"] == "pending"
    # Waiting for the builder: listed as starting, as a detached `heroku run` is before its host takes it.
    assert dynos(api, alice, "shop") == [("release.1", "release", "starting", LONG, "Standard-1X")]
    draining = threading.Thread(target=worker.drain)
    draining.start()
    try:
        eventually(lambda: ("app", "migrating") in app_log(app, "release.1"), "the release command's output")
        assert dynos(api, alice, "shop") == [("release.1", "release", "up", LONG, "Standard-1X")]
        shown = api.get("/apps/shop/dynos/release.1", alice).get_json()
        assert shown["release"]["version"] == 2 and shown["created_at"] and shown["attach_url"] is None
        by_id = api.get(f"/apps/shop/dynos/{shown['id']}", alice).get_json()
        assert by_id["name"] == "release.1"

        page = Browser(app)
        page.sign_in(alice)
        tab = text(page.get("/dashboard/apps/shop/formation"))
        assert "release.1" in tab and LONG in tab and "/dynos/release.1/stop" in tab

        # A restart would have to run the release command again: refused, and it keeps running.
        for refused in (api.delete("/apps/shop/dynos/release.1", alice),
                        api.delete("/apps/shop/formations/release", alice)):
            assert refused.status_code == 422, refused.get_json()
            assert refused.get_json()["id"] == "invalid_params"
            assert "cannot be restarted" in refused.get_json()["message"]
            assert "ps:stop release.1" in refused.get_json()["message"]
        assert dynos(api, alice, "shop")[0][2] == "up"

        stopped = page.submit("/dashboard/apps/shop/dynos/release.1/stop", follow=True)
        assert stopped.status_code == 200 and "Stopping release.1." in text(stopped)
        draining.join(120)
        assert not draining.is_alive()
    finally:
        draining.join(120)

    assert releases_of(api, alice, "shop") == [(1, "succeeded", True), (2, "failed", False)]
    output = output_of(api, api.get("/apps/shop/releases/2", alice).get_json()).data.decode()
    assert output.startswith("migrating\n")
    assert ("Release v2 failed: release.1 was stopped by alice@example.com (exited with status 143)."
            in output), output
    logged = app_log(app, "release.1")
    assert [message for source, message in logged if source == "heroku"] == [
        f"Starting process with command `{LONG}`", "State changed from starting to up",
        "Stopping all processes with SIGTERM", "Process exited with status 143", "State changed from up to down"]
    assert logged[-1][1].startswith(" !     Release v2 failed: release.1 was stopped by alice@example.com")
    assert dynos(api, alice, "shop") == []
    ended = api.get("/apps/shop/dynos/release.1", alice).get_json()
    assert (ended["state"], ended["exit_code"]) == ("down", 143)


def test_a_release_dyno_stopped_while_it_waits_never_runs(app: Flask, api: Api, alice: User, stack: Path,
                                                          tmp_path: Path) -> None:
    api.post("/apps", alice, json={"name": "shop"})
    worker, _ = phases(app, stack)
    api.post("/apps/shop/releases", alice, json={"slug": slug_with(api, alice, "shop", tmp_path, LONG)})
    assert api.post("/apps/shop/dynos/release.1/actions/stop", alice).status_code == 202
    assert dynos(api, alice, "shop") == []
    assert worker.drain() == 1
    assert releases_of(api, alice, "shop") == [(1, "succeeded", True), (2, "failed", False)]
    output = output_of(api, api.get("/apps/shop/releases/2", alice).get_json()).data.decode()
    assert "Release v2 failed: release.1 was stopped by alice@example.com before it started." in output
    assert "migrating" not in output and ("app", "migrating") not in app_log(app, "release.1")
    assert release_rows(app) == [("release.1", "down", None)]


def test_release_dynos_share_the_one_off_numbers_and_are_the_builders_alone(
        app: Flask, api: Api, alice: User, stack: Path, tmp_path: Path) -> None:
    api.post("/apps", alice, json={"name": "shop"})
    worker, jobs = phases(app, stack)
    api.post("/apps/shop/releases", alice, json={"slug": slug_with(api, alice, "shop", tmp_path, "migrate")})
    worker.drain()  # release.1 ran: v2 succeeded
    assert api.post("/apps/shop/dynos", alice, json={"command": "sleep 60"}).get_json()["name"] == "run.2"
    reserved = api.post("/apps/shop/dynos", alice, json={"command": "sleep 60", "type": "release"})
    assert reserved.status_code == 422 and "release phase" in reserved.get_json()["message"]
    api.patch("/apps/shop/config-vars", alice, json={"GREETING": "hi"})  # v3: release.3, waiting
    assert [name for name, *_ in dynos(api, alice, "shop")] == ["release.3", "run.2"]

    database = app.extensions["berth.database"]
    with database.transaction() as session:  # what the rendezvous host does: never to a release dyno
        assert one_off_dynos.claim_detached(session).name == "run.2"  # type: ignore[union-attr]
        assert one_off_dynos.claim_detached(session) is None
        session.execute(update(OneOffDyno).where(OneOffDyno.type == "release", OneOffDyno.state == "starting").values(
            state="up", created_at=utcnow().replace(year=2000)))  # as if it ran for years
        assert [dyno.name for dyno in one_off_dynos.orphan_running(session)] == ["run.2"]
        assert one_off_dynos.sweep_outlived(session) == []
    assert release_rows(app) == [("release.1", "down", 0), ("release.3", "up", None)]

    # A builder that died while release.3 ran: the sweep fails the release and ends its dyno.
    with database.transaction() as session:
        session.execute(update(ReleasePhase).where(ReleasePhase.state == JobState.PENDING).values(
            state=JobState.RUNNING, attempts=1, lease_until=utcnow()))
    jobs.sweep()
    assert releases_of(api, alice, "shop")[-1] == (3, "failed", False)
    assert release_rows(app) == [("release.1", "down", 0), ("release.3", "crashed", None)]
    assert dynos(api, alice, "shop") == []
