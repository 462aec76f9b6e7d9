"""Crashes and what the router says about them: restarts that back off, H10, H14, H80, router lines."""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.runner.conftest import RunPlatform, eventually

pytestmark = pytest.mark.slow


def stamp(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def test_a_crash_loop_restarts_at_once_then_backs_off(run_platform: RunPlatform) -> None:
    """The module's runner doubles a cool-off of 1 s: restarts come ~0, 1, 2, 4 s after each crash."""
    app = "run-crashloop"
    run_platform.built.make_app(app)
    run_platform.deploy(app, processes={"web": "python3 server.py", "crashy": "echo boom; exit 3"})
    run_platform.scale(app, web=0, crashy=1)
    restarts = eventually(lambda: [line for line in run_platform.log(app, dyno="crashy.1")
                                   if "State changed from crashed to starting" in line][:4] if
                          len([line for line in run_platform.log(app, dyno="crashy.1")
                               if "State changed from crashed to starting" in line]) >= 4 else None,
                          timeout=90, what="four restarts", interval=0.5)
    gaps = [stamp(later) - stamp(earlier) for earlier, later in zip(restarts, restarts[1:])]
    # each gap: the crash's own run (well under a second) + the round that sees it + the cool-off
    assert gaps[1] > gaps[0] + 0.5 and gaps[2] > gaps[1] + 1.0, gaps
    rows = run_platform.dynos(app)
    assert [row.name for row in rows] == ["crashy.1"] and rows[0].state in ("crashed", "starting", "up")
    run_platform.scale(app, crashy=0)
    eventually(lambda: run_platform.dynos(app) == [], what="the crashing dyno gone")


def router_lines(platform: RunPlatform, app: str) -> str:
    return "\n".join(line for line in platform.log(app, source="heroku", dyno="router") if "heroku[router]" in line)


def answered_with(platform: RunPlatform, app: str, code: str) -> bool:
    """A request now, and the router's line for it (or an earlier one) names `code`."""
    platform.status(app)
    return f"code={code} " in router_lines(platform, app)


def test_router_codes_h10_h14_h80_and_router_lines(run_platform: RunPlatform) -> None:
    app = "run-codes"
    run_platform.built.make_app(app)
    run_platform.deploy(app, processes={"web": "echo cannot serve; exit 1"})
    eventually(lambda: answered_with(run_platform, app, "H10"), what="H10 once web crashed", interval=1)
    assert 'at=error code=H10 desc="App crashed" method=GET path="/" host=run-codes.localhost' in \
        router_lines(run_platform, app)
    run_platform.scale(app, web=0)
    eventually(lambda: answered_with(run_platform, app, "H14"), what="H14 with web at 0", interval=1)
    run_platform.deploy(app)  # code that serves; web stays at 0 until scaled
    run_platform.scale(app, web=1)
    eventually(lambda: run_platform.status(app) == 200, what="serving")
    assert run_platform.call("PATCH", f"/apps/{app}", {"maintenance": True}).status_code == 200
    eventually(lambda: (lambda answer: answer.status_code == 503 and "Offline for Maintenance" in answer.text)(
        run_platform.get(app)), what="the maintenance page, with 503")
    assert run_platform.call("PATCH", f"/apps/{app}", {"maintenance": False}).status_code == 200
    eventually(lambda: run_platform.status(app) == 200, what="serving after maintenance")
    text = eventually(lambda: (lambda text: text if "code=H80" in text and "status=200" in text else None)(
        router_lines(run_platform, app)), what="the router lines of every request", interval=1)
    assert 'at=error code=H14 desc="No web processes running"' in text
    assert 'at=info code=H80 desc="Maintenance mode"' in text
    served = [line for line in text.splitlines() if "status=200" in line][0]
    for part in ("at=info method=GET path=\"/\" host=run-codes.localhost request_id=", "dyno=web.1 connect=",
                 "service=", "bytes="):
        assert part in served, served


def test_a_dyno_the_backend_cannot_start_is_retried_with_a_growing_cool_off(run_platform: RunPlatform) -> None:
    """Its slug gone from the store: each failed start is said in the log (R99, with what to do), and
    the next try waits like a crash's restart (the module's cool-off is 1 s, doubling) instead of
    coming every round."""
    app = "run-no-slug"
    run_platform.built.make_app(app)
    release = run_platform.deploy(app, processes={"idle": "sleep 600"})  # no web: nothing runs yet
    checksum = run_platform.call("GET", f"/apps/{app}/slugs/{release['slug']['id']}").json()["checksum"]
    blob = Path(run_platform.env["BERTH_DATA_DIR"]) / "slugs" / "sha256" / checksum[7:9] / f"{checksum[7:]}.tgz"
    blob.unlink()
    run_platform.scale(app, idle=1)
    first = eventually(lambda: lines_with_r99(run_platform, app), what="R99", timeout=30)
    assert "could not be started" in first[0] and "tries again" in first[0]
    time.sleep(10)
    tries = lines_with_r99(run_platform, app)
    assert 2 <= len(tries) <= 7, tries  # 0, 0, 1, 2, 4 s apart: not one a round
    run_platform.scale(app, idle=0)


def lines_with_r99(platform: RunPlatform, app: str) -> list[str]:
    return [line for line in platform.log(app, dyno="idle.1") if "Error R99" in line]
