"""A push streams through the web process: its peak memory does not grow with the push's size."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.slow
PUSH_BYTES = 64 * 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_large_push_is_not_held_in_the_web_workers_memory(tmp_path: Path) -> None:
    with live_server(tmp_path, workers=1) as server:
        key = server.create_user("stream@example.com")
        assert server.api("POST", "/apps", key, json={"name": "git-stream"}).status_code == 201
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}
        work = tmp_path / "work"  # beside the server's data
        work.mkdir()
        (work / "blob.bin").write_bytes(os.urandom(PUSH_BYTES))  # incompressible: the pack is as large
        for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "x"]):
            subprocess.run(argv, cwd=work, env=env, check=True, timeout=120)
        worker = next(p for p in psutil.Process(_gunicorn_pid(server.log)).children() if "gunicorn" in " ".join(p.cmdline()))
        before = peak_rss(worker.pid)
        url = server.url.replace("http://", f"http://anyone:{key}@") + "/git-stream.git"
        pushed = subprocess.run(["git", "push", url, "main"], cwd=work, env=env, capture_output=True,
                                text=True, timeout=300)
        assert pushed.returncode == 0, pushed.stderr
        grew = peak_rss(worker.pid) - before
        assert grew < PUSH_BYTES // 4, f"the web worker's peak memory grew by {grew} bytes"


def _gunicorn_pid(log: Path) -> int:
    for line in log.read_text().splitlines():
        if "Listening at:" in line:
            return int(line.rsplit("(", 1)[1].rstrip(")"))
    raise AssertionError("gunicorn's pid is not in its log")
