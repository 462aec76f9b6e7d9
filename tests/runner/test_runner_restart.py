"""The runner restarted under load: it adopts the running dynos and nginx, nothing is started twice
and no request fails meanwhile."""
from __future__ import annotations

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
