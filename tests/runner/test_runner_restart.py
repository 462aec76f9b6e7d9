"""The runner restarted under load: it adopts the running dynos and nginx, nothing is started twice
and no request fails meanwhile."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import psutil
import pytest

from tests.runner.conftest import Load, RunPlatform, eventually

pytestmark = pytest.mark.slow


def test_a_restarted_runner_adopts_its_dynos_under_load(run_platform: RunPlatform) -> None:
    app = "run-adopt"
    run_platform.built.make_app(app)
    run_platform.deploy(app)
    run_platform.scale(app, web=2)
    eventually(lambda: run_platform.served_by(app, 20) == {"web.1", "web.2"}, what="two dynos serving")
    before = {row.name: row.backend_id for row in run_platform.dynos(app)}
    with Load(run_platform, app) as load:
        run_platform.stop_runner()
        during = len(load.results)
        eventually(lambda: len(load.results) > during + 20, what="requests while no runner runs")
        run_platform.start_runner()
        eventually(lambda: run_platform.runner_log().count("runner started") >= 2, what="the new runner")
        run_platform.scale(app, web=3)  # the new runner acts: web.3 joins the adopted two
        eventually(lambda: run_platform.served_by(app, 30) == {"web.1", "web.2", "web.3"}, what="three serving")
    after = {row.name: row.backend_id for row in run_platform.dynos(app)}
    assert {name: after[name] for name in before} == before  # the same dynos, not replacements
    assert sorted(after) == ["web.1", "web.2", "web.3"]  # and no second copy of any
    assert load.failures() == [], load.failures()[:5]


def test_after_a_machine_restart_the_formation_comes_back(run_platform: RunPlatform) -> None:
    """Everything killed at once, as a power cut does: the next runner starts the formation again."""
    app = "run-reboot"
    run_platform.built.make_app(app)
    run_platform.deploy(app)
    run_platform.scale(app, web=2)
    eventually(lambda: run_platform.served_by(app, 20) == {"web.1", "web.2"}, what="two dynos serving")
    before = {row.backend_id for row in run_platform.dynos(app)}
    run_platform.stop_runner()
    records = Path(run_platform.env["BERTH_DATA_DIR"]) / "dynos"
    keepers = []
    for meta in records.glob("*/meta.json"):  # each dyno's keeper, by the pid its start recorded
        with contextlib.suppress(psutil.NoSuchProcess):
            keepers.append(psutil.Process(json.loads(meta.read_text())["keeper_pid"]))
    assert len(keepers) >= 2
    for keeper in keepers:
        for process in [*keeper.children(recursive=True), keeper]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    psutil.wait_procs(keepers, timeout=10)
    run_platform.start_runner()
    eventually(lambda: run_platform.served_by(app, 30) == {"web.1", "web.2"}, what="the formation back")
    after = {row.backend_id for row in run_platform.dynos(app) if row.state == "up"}
    assert len(after) == 2 and not after & before
