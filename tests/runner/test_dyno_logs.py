"""Every dyno's output and its state changes in the app's log stream, through a live runner: what a
dyno prints, R10 for a web process that never binds $PORT, R14 then R15 and a restart for a memory
hog; `heroku logs --tail` and `berth logs --tail` receive them."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tests.heroku_cli import BINARY, heroku_cli
from tests.live_server import ROOT
from tests.runner.conftest import RunPlatform, eventually

pytestmark = pytest.mark.slow

# Over 512 MB (standard-1X's quota: R14), then over 1 GB (twice it: R15, killed by the cgroup).
HOG = ('python3 -c "import time; a = b\'x\' * (700 * 2**20); print(\'holding 700 MB\', flush=True); time.sleep(4); '
       'b = b\'y\' * (600 * 2**20); time.sleep(60)"')


def _collect(process: subprocess.Popen[str]) -> list[str]:
    """The process's stdout, as it arrives, read on a thread of its own."""
    got: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            got.append(line)
    threading.Thread(target=read, daemon=True).start()
    return got


def lines_with(platform: RunPlatform, app: str, *texts: str, dyno: str | None = None) -> list[str]:
    filters = {"dyno": dyno} if dyno else {}
    return [line for line in platform.log(app, **filters) if any(text in line for text in texts)]


def test_dyno_output_and_state_changes_reach_the_log_stream_and_tails(run_platform: RunPlatform,
                                                                      tmp_path_factory) -> None:
    app = "run-logs"
    run_platform.built.make_app(app)
    cli = heroku_cli(run_platform.built.server.url, run_platform.built.key, tmp_path_factory.mktemp("home"))
    heroku_tail = subprocess.Popen([str(BINARY), "logs", "--tail", "-a", app], env=cli.env(), cwd=cli.home,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    berth_env = {**run_platform.env, "BERTH_API_URL": run_platform.built.server.url,
                 "BERTH_API_KEY": run_platform.built.key}
    berth_tail = subprocess.Popen([sys.executable, "-m", "berth.cli", "logs", "--tail", "-a", app], env=berth_env,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = {"heroku": _collect(heroku_tail), "berth": _collect(berth_tail)}
    try:
        time.sleep(2)  # both tails connecting (a late one still gets the recent lines: Heroku's default 100)
        run_platform.deploy(app, processes={"web": "python3 server.py",
                                            "ticker": "for i in 1 2 3; do echo tick $i; done; sleep 600"})
        run_platform.scale(app, ticker=1)
        stream = eventually(lambda: (lambda got: got if len(got) >= 3 else None)(
            lines_with(run_platform, app, "app[ticker.1]: tick ", dyno="ticker.1")), what="the ticker's lines")
        assert [line.split(": ", 1)[1] for line in stream] == ["tick 1", "tick 2", "tick 3"]
        assert all(" app[ticker.1]: " in line for line in stream)
        states = eventually(lambda: (lambda got: got if any("to up" in line for line in got) else None)(
            lines_with(run_platform, app, "Starting process with command", "State changed", dyno="web.1")),
            what="web.1 up in the log")
        assert any("heroku[web.1]: Starting process with command `python3 server.py`" in line for line in states)
        assert any("heroku[web.1]: State changed from starting to up" in line for line in states)
        assert eventually(lambda: lines_with(run_platform, app, "app[web.1]: listening on"), what="web.1's output")
        eventually(lambda: run_platform.status(app) == 200, what="serving")
        eventually(lambda: lines_with(run_platform, app, "heroku[router]: at=info"), what="a router line")
        wanted = ("app[ticker.1]: tick 3", "heroku[web.1]: State changed from starting to up")
        for name, got in outputs.items():  # a tail (node's start, under load) may still be catching up
            eventually(lambda: all(text in "".join(got) for text in wanted), what=f"{name}'s tail showing the lines")
    finally:
        for tail in (heroku_tail, berth_tail):
            tail.terminate()
    for name, tail in (("heroku", heroku_tail), ("berth", berth_tail)):
        tail.wait(timeout=30)
        out = "".join(outputs[name])
        assert "app[ticker.1]: tick 3" in out, (name, out[-2000:])
        assert "heroku[web.1]: State changed from starting to up" in out, (name, out[-2000:])
    run_platform.scale(app, web=0, ticker=0)
    eventually(lambda: lines_with(run_platform, app, "Process exited with status", dyno="ticker.1"),
               what="the stopped ticker's last line")


def test_a_web_process_that_never_binds_gets_r10_and_is_restarted(run_platform: RunPlatform) -> None:
    """The module's runner gives web dynos 3 s to bind (BERTH_DYNO_BOOT_TIMEOUT_SECONDS)."""
    app = "run-r10"
    run_platform.built.make_app(app)
    run_platform.deploy(app, processes={"web": "echo not listening; sleep 600"})
    found = eventually(lambda: lines_with(run_platform, app, "Error R10 (Boot timeout)", dyno="web.1"),
                       what="R10", timeout=60)
    assert "Web process failed to bind to $PORT within 3 seconds of launch" in found[0]
    eventually(lambda: lines_with(run_platform, app, "State changed from crashed to starting", dyno="web.1"),
               what="the restart after R10")
    assert run_platform.status(app) == 503  # never up: the router answers for it (H10 after a crash)
    run_platform.scale(app, web=0)


def test_a_memory_hog_gets_r14_then_r15_and_a_restart(run_platform: RunPlatform) -> None:
    app = "run-hog"
    run_platform.built.make_app(app)
    run_platform.deploy(app, processes={"web": "python3 server.py", "hog": HOG})
    run_platform.scale(app, web=0, hog=1)
    r15 = eventually(lambda: lines_with(run_platform, app, "Error R15", dyno="hog.1"), what="R15", timeout=90)
    text = "\n".join(run_platform.log(app, dyno="hog.1"))
    assert text.index("Error R14 (Memory quota exceeded)") < text.index("Error R15 (Memory quota vastly exceeded)")
    assert r15
    eventually(lambda: lines_with(run_platform, app, "State changed from crashed to starting", dyno="hog.1"),
               what="the hog restarted")
    run_platform.scale(app, hog=0)
    eventually(lambda: run_platform.dynos(app) == [], what="the hog gone")
