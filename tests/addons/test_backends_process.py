"""`python -m berth.addons.backends`, as `make run` starts it: it brings the embedded PostgreSQL
cluster up, starts it again after it was killed, and on SIGTERM stops it and exits 0."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from berth.addons.postgres import embedded
from berth.config import Settings
from berth.supervise import processes
from tests.live_server import ROOT, clean_env

pytestmark = pytest.mark.slow


def postmaster(settings: Settings, process: "subprocess.Popen[bytes]", log: Path, other_than: int = 0) -> int:
    """The running postmaster's pid once it is not `other_than`; fails if the backends process dies."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, f"backends exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            pid = int((embedded.root(settings) / "cluster" / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid and pid != other_than and processes.alive(pid):
            return pid
        time.sleep(0.2)
    pytest.fail(f"no postmaster from the backends process:\n{log.read_text()[-3000:]}")


def test_the_backends_process_keeps_the_embedded_cluster_up_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'control.sqlite3'}")
    env = {**clean_env(), "BERTH_DATA_DIR": str(settings.data_dir), "BERTH_DATABASE_URL": settings.database_url}
    log = tmp_path / "backends.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "berth.addons.backends"], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        first = postmaster(settings, process, log)
        os.kill(first, signal.SIGKILL)
        second = postmaster(settings, process, log, other_than=first)  # the next round restarts it
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()[-3000:]
        assert not processes.alive(second)
        assert not (embedded.root(settings) / "cluster" / "postmaster.pid").exists()
        assert "supervising add-on backends" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        embedded.stop(settings)
