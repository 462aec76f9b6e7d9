"""The release phase through the API and a real job runner (the builder's job type, driven with
Worker.drain; the command runs in the real sandbox): releases of a slug with a `release` command
are cut pending, succeed only when it exits 0, fail otherwise with the previous release current;
output through output_stream_url (resumable with Range) and the app's log stream; a runner killed
mid-run leaves the release failed, never pending. SQLite and PostgreSQL."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from berth.db import utcnow
from berth.hooks import RELEASE_CREATED, RELEASE_CURRENT
from berth.jobs.queue import JobState
from berth.jobs.worker import Worker
from berth.platform import config_vars
from berth.platform.logs.models import LogLine
from berth.platform.models import Release, ReleasePhase, ReleaseStatus
from berth.platform.release_phase.job import ReleasePhaseJobs
from berth.platform.slug_store import local_store
from berth.platform.slugs import pack
from tests.api.test_slugs import create_slug, upload
from tests.conftest import Api, User

pytestmark = pytest.mark.slow
API = "http://127.0.0.1:5000"


def phases(app: Flask, stack: Path, timeout: float = 60) -> tuple[Worker, ReleasePhaseJobs]:
    settings = app.config["BERTH_SETTINGS"]
    database = app.extensions["berth.database"]
    jobs = ReleasePhaseJobs(database, settings, local_store(settings.data_dir), stack=stack, timeout_seconds=timeout)
    return Worker(dataclasses.replace(settings, worker_threads=1), [jobs]), jobs


def slug_with(api: Api, user: User, app: str, tmp_path: Path, release: str, *, name: str = "slug") -> str:
    """An uploaded slug whose .profile.d puts its bin/ on PATH; its id."""
    build = tmp_path / name
    (build / "bin").mkdir(parents=True)
    (build / "bin" / "migrate").write_text("#!/bin/sh\necho \"migrating as $DYNO with GREETING=$GREETING\"\n")
    (build / "bin" / "migrate").chmod(0o755)
    (build / ".profile.d").mkdir()
    (build / ".profile.d" / "path.sh").write_text('export PATH="$HOME/bin:$PATH"\n')
    packed = pack(build, tmp_path / f"{name}.tgz")
    slug = create_slug(api, user, app, process_types={"web": "bin/serve", "release": release})
    assert upload(api, slug, packed.path.read_bytes()).status_code == 200
    return slug["id"]


def releases_of(api: Api, user: User, app: str) -> list[tuple[int, str, bool]]:
    return [(r["version"], r["status"], r["current"]) for r in api.get(f"/apps/{app}/releases", user).get_json()]


def output_of(api: Api, release: dict[str, Any], **headers: str) -> Any:
    url = release["output_stream_url"]
    assert url.startswith(f"{API}/release-output/"), url
    return api.client.get(url[len(API):], headers=headers)


def app_log(app: Flask, process: str) -> list[tuple[str, str]]:
    with app.extensions["berth.database"].session(write=False) as session:
        return [(line.source, line.message) for line in session.scalars(
            select(LogLine).where(LogLine.process == process).order_by(LogLine.id))]


def test_a_release_command_gates_the_release(app: Flask, api: Api, alice: User, stack: Path, tmp_path: Path) -> None:
    current: list[int] = []
    app.extensions["berth.hooks"].register(RELEASE_CURRENT, lambda session, release: current.append(release.version))
    api.post("/apps", alice, json={"name": "shop"})
    api.patch("/apps/shop/config-vars", alice, json={"GREETING": "hi"})  # v2
    worker, _ = phases(app, stack)
    good = slug_with(api, alice, "shop", tmp_path, "migrate")
    made = api.post("/apps/shop/releases", alice, json={"slug": good})
    assert made.status_code == 201 and made.get_json()["status"] == "pending"
    assert releases_of(api, alice, "shop") == [(1, "succeeded", False), (2, "succeeded", True), (3, "pending", False)]
    assert worker.drain() == 1
    assert releases_of(api, alice, "shop")[-1] == (3, "succeeded", True) and current == [3]
    v3 = api.get("/apps/shop/releases/3", alice).get_json()
    whole = output_of(api, v3)
    assert whole.status_code == 200 and whole.mimetype == "text/plain"
    assert whole.data.decode().splitlines() == ["migrating as release.1 with GREETING=hi", "Release v3 succeeded."]
    resumed = output_of(api, v3, Range="bytes=13-")
    assert resumed.status_code == 206 and resumed.data == whole.data[13:]
    for bad in ("bytes=0-5", "lines=1-", f"bytes={len(whole.data)}-"):
        refused = output_of(api, v3, Range=bad)
        assert refused.status_code == 416 and refused.get_json()["id"] == "requested_range_not_satisfiable"
    assert app_log(app, "release.1") == [("heroku", "Starting process with command `migrate`"),
                                         ("heroku", "State changed from starting to up"),
                                         ("app", "migrating as release.1 with GREETING=hi"),
                                         ("heroku", "Process exited with status 0"),
                                         ("heroku", "State changed from up to complete")]

    # A config change re-runs the release command (release.2) with the new config.
    api.patch("/apps/shop/config-vars", alice, json={"GREETING": "hello"})
    assert releases_of(api, alice, "shop")[-1] == (4, "pending", False)
    worker.drain()
    assert releases_of(api, alice, "shop")[-1] == (4, "succeeded", True)
    assert output_of(api, api.get("/apps/shop/releases/4", alice).get_json()).data.decode().startswith(
        "migrating as release.2 with GREETING=hello")

    # A failing command: v5 failed, v4 stays current, the output says why; no output URL for v1/v2.
    bad = slug_with(api, alice, "shop", tmp_path, "echo 'no database'; exit 3", name="bad")
    api.post("/apps/shop/releases", alice, json={"slug": bad})
    worker.drain()
    listed = api.get("/apps/shop/releases", alice).get_json()
    assert [(r["version"], r["status"], r["current"]) for r in listed][-2:] == [(4, "succeeded", True), (5, "failed", False)]
    assert [r["output_stream_url"] is None for r in listed] == [True, True, False, False, False]
    failed_output = output_of(api, listed[-1]).data.decode()
    assert failed_output.startswith("no database\n")
    assert "Release v5 failed: the release command exited with status 3." in failed_output
    assert current == [3, 4]
    refused = api.post("/apps/shop/releases", alice, json={"release": "v5"})
    assert refused.status_code == 422 and "only a release that succeeded" in refused.get_json()["message"]

    # Rollback to v3 runs v3's release command again (release.4), and succeeds.
    api.post("/apps/shop/releases", alice, json={"release": "v3"})
    assert releases_of(api, alice, "shop")[-1] == (6, "pending", False)
    worker.drain()
    assert releases_of(api, alice, "shop")[-1] == (6, "succeeded", True) and current == [3, 4, 6]
    assert app_log(app, "release.4")[2] == ("app", "migrating as release.4 with GREETING=hi")

    # A config change while a deploy's release phase is pending carries the deploy's code: once
    # both succeed, the new code is live, not undone by the config change.
    newer = slug_with(api, alice, "shop", tmp_path, "migrate", name="newer")
    api.post("/apps/shop/releases", alice, json={"slug": newer})
    api.patch("/apps/shop/config-vars", alice, json={"GREETING": "hey"})
    assert releases_of(api, alice, "shop")[-2:] == [(7, "pending", False), (8, "pending", False)]
    worker.drain()
    worker.drain()
    assert releases_of(api, alice, "shop")[-1] == (8, "succeeded", True)
    assert api.get("/apps/shop/releases/8", alice).get_json()["slug"]["id"] == newer


def test_an_add_on_changing_its_own_vars_skips_the_release_phase(app: Flask, api: Api, alice: User, stack: Path,
                                                                 tmp_path: Path) -> None:
    created: list[Any] = []
    app.extensions["berth.hooks"].register(RELEASE_CREATED, lambda session, releases: created.extend(releases))
    shop = api.post("/apps", alice, json={"name": "shop"}).get_json()
    worker, _ = phases(app, stack)
    api.post("/apps/shop/releases", alice, json={"slug": slug_with(api, alice, "shop", tmp_path, "migrate")})
    worker.drain()
    with app.extensions["berth.database"].transaction() as session:
        config_vars.set_owned_configs(session, [config_vars.OwnedConfig(
            shop["id"], "attachment-1", {"DATABASE_URL": "postgres://x"}, "Attach DATABASE")])
    assert releases_of(api, alice, "shop")[-1] == (3, "succeeded", True)
    assert [(r.version, r.status) for r in created] == [(1, "succeeded"), (2, "pending"), (3, "succeeded")]
    assert worker.drain() == 0


def test_a_time_limit_and_a_killed_runner_fail_the_release(app: Flask, api: Api, alice: User, stack: Path,
                                                           tmp_path: Path) -> None:
    api.post("/apps", alice, json={"name": "shop"})
    worker, jobs = phases(app, stack, timeout=2)
    slow = slug_with(api, alice, "shop", tmp_path, "echo start; sleep 30")
    api.post("/apps/shop/releases", alice, json={"slug": slow})
    worker.drain()
    assert releases_of(api, alice, "shop") == [(1, "succeeded", True), (2, "failed", False)]
    text = output_of(api, api.get("/apps/shop/releases/2", alice).get_json()).data.decode()
    assert text.startswith("start\n") and "ran longer than its time limit (2 seconds) and was stopped" in text

    # A runner that died mid-run (its claim taken, nothing finished): failed when a runner starts.
    api.post("/apps/shop/releases", alice, json={"slug": slow})  # v3
    database = app.extensions["berth.database"]
    with database.transaction() as session:
        session.execute(update(ReleasePhase).where(ReleasePhase.state == JobState.PENDING).values(
            state=JobState.RUNNING, attempts=1, lease_until=utcnow()))
    jobs.sweep()  # the lease passed
    assert releases_of(api, alice, "shop")[-1] == (3, "failed", False)
    with database.session(write=False) as session:
        assert session.scalar(select(Release.status).where(Release.version == 1)) == ReleaseStatus.SUCCEEDED
        message = session.scalar(select(ReleasePhase.message).where(ReleasePhase.number == 2))
    assert "The builder stopped while the release command ran" in message
    assert "builder stopped" in output_of(api, api.get("/apps/shop/releases/3", alice).get_json()).data.decode()
