"""The runner end to end: releases and formations become real dynos behind the real router."""
from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

import pytest

from tests.runner.conftest import Load, RunPlatform, deploy_under_load, eventually

pytestmark = pytest.mark.slow


def make_app(platform: RunPlatform, name: str) -> str:
    platform.built.make_app(name)
    return name


def test_a_release_runs_web_1_and_scaling_to_3_serves_from_all_three(run_platform: RunPlatform) -> None:
    app = make_app(run_platform, "run-scale")
    run_platform.deploy(app)
    eventually(lambda: run_platform.served_by(app, 10) == {"web.1"}, what="web.1 serving through the router")
    rows = run_platform.dynos(app)
    assert [(row.name, row.state, row.release_version) for row in rows] == [("web.1", "up", 2)]
    run_platform.scale(app, web=3)
    eventually(lambda: run_platform.served_by(app, 30) == {"web.1", "web.2", "web.3"}, what="all three serving")
    assert sorted(row.name for row in run_platform.dynos(app)) == ["web.1", "web.2", "web.3"]
    run_platform.scale(app, web=1)
    eventually(lambda: sorted(row.name for row in run_platform.dynos(app)) == ["web.1"], what="scaled down")
    assert run_platform.served_by(app, 10) == {"web.1"}
    run_platform.scale(app, web=0)
    eventually(lambda: run_platform.status(app) == 503, what="no web dynos")
    eventually(lambda: run_platform.dynos(app) == [], what="web.1 stopped and gone from the list")


def host_pid(address: str) -> int:
    """The host's pid of the test server listening at `address` (a dyno's own pid namespace numbers
    it differently)."""
    port = address.rsplit(":", 1)[1]
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if (process.info["cmdline"] or [])[-2:] == ["python3", "server.py"] and process.environ().get("PORT") == port:
                return process.pid
    raise AssertionError(f"no test server listens on {address}")


def test_a_killed_dyno_is_restarted_and_with_two_no_request_fails(run_platform: RunPlatform) -> None:
    app = make_app(run_platform, "run-kill")
    run_platform.deploy(app)
    run_platform.scale(app, web=2)
    eventually(lambda: run_platform.served_by(app, 20) == {"web.1", "web.2"}, what="two dynos serving")
    killed = next(row for row in run_platform.dynos(app) if row.name == "web.1")
    with Load(run_platform, app) as load:
        time.sleep(0.5)
        os.kill(host_pid(killed.address), signal.SIGKILL)
        restarted = eventually(lambda: [row for row in run_platform.dynos(app) if row.name == "web.1"
                                        and row.backend_id != killed.backend_id and row.state == "up"],
                               what="a new web.1 up")
        eventually(lambda: "web.1" in run_platform.served_by(app, 10), what="the new web.1 serving")
    assert restarted[0].id != killed.id
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 20


def test_a_config_change_reaches_the_running_process(run_platform: RunPlatform) -> None:
    app = make_app(run_platform, "run-config")
    run_platform.deploy(app)
    eventually(lambda: run_platform.status(app) == 200, what="serving")
    assert eventually(lambda: run_platform.answer(app), what="an answer")["greeting"] is None
    assert run_platform.call("PATCH", f"/apps/{app}/config-vars", {"GREETING": "ahoy"}).status_code == 200
    eventually(lambda: (run_platform.answer(app) or {}).get("greeting") == "ahoy", what="the new config served")


def test_a_deploy_under_steady_load_fails_no_request(run_platform: RunPlatform) -> None:
    app = make_app(run_platform, "run-roll")
    run_platform.deploy(app, version="1")
    run_platform.scale(app, web=2)
    eventually(lambda: run_platform.served_by(app, 20) == {"web.1", "web.2"}, what="two dynos serving")
    load = deploy_under_load(run_platform, app)
    assert load.failures() == [], load.failures()[:5]


def test_a_restart_through_the_api_replaces_the_dyno_and_the_api_lists_it(run_platform: RunPlatform) -> None:
    app = make_app(run_platform, "run-restart")
    run_platform.deploy(app)
    eventually(lambda: run_platform.status(app) == 200, what="serving")
    listed = run_platform.call("GET", f"/apps/{app}/dynos").json()
    assert [(dyno["name"], dyno["state"], dyno["type"]) for dyno in listed] == [("web.1", "up", "web")]
    before = run_platform.dynos(app)[0]
    assert run_platform.call("DELETE", f"/apps/{app}/dynos/web.1").status_code == 202
    eventually(lambda: [row for row in run_platform.dynos(app) if row.backend_id != before.backend_id
                        and row.state == "up"], what="a new web.1")
    eventually(lambda: run_platform.status(app) == 200, what="serving again")
    assert run_platform.call("GET", f"/apps/{app}/dynos/web.1").json()["id"] != before.id
    assert eventually(lambda: run_platform.answer(app), what="the new web.1 answering")["pid"] is not None
    assert any("Restarting" in line for line in run_platform.log(app, dyno="web.1"))
    restarted = run_platform.dynos(app)[0]
    assert run_platform.call("POST", f"/apps/{app}/dynos/web.1/actions/stop").status_code == 202
    eventually(lambda: [row.backend_id for row in run_platform.dynos(app) if row.state == "up"]
               not in ([], [restarted.backend_id]) and run_platform.status(app) == 200,
               what="a stopped formation dyno replaced, as Heroku replaces it")


def test_a_scale_up_wakes_the_runner_for_each_dyno_up_not_for_each_start(run_platform: RunPlatform) -> None:
    """Every woken round costs the runner CPU that the dynos booting beside it need: a scale to three
    wakes it once for the formation, once when the last start has returned and once per dyno up."""
    from berth.jobs.wakeup import RunnerListener

    app = make_app(run_platform, "run-wakeups")
    run_platform.deploy(app)
    run_platform.scale(app, web=0)
    eventually(lambda: run_platform.dynos(app) == [], what="no dynos")
    listener = RunnerListener(run_platform.built.data_dir)  # beside the runner's: gets every nudge it gets
    try:
        run_platform.scale(app, web=3)
        woken = 0
        deadline = time.monotonic() + 60
        while run_platform.served_by(app, 30) != {"web.1", "web.2", "web.3"}:
            assert time.monotonic() < deadline, "the three dynos did not serve"
            woken += listener.wait(0.05)
        woken += listener.wait(1.0)
        # 1 (formation) + 1 (the starts) + 3 (up); before: a nudge per start and two per dyno starting.
        assert woken <= 5, woken
    finally:
        listener.close()
    run_platform.scale(app, web=0)
    eventually(lambda: run_platform.dynos(app) == [], what="scaled down")
