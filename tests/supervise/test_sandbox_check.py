"""`python -m berth.supervise.sandbox_check` says what isolation holds on this host, by trying it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from berth.supervise.sandbox import sandbox_account

pytestmark = pytest.mark.slow
WORKTREE = Path(__file__).resolve().parents[2]


def check(**popen: object) -> subprocess.CompletedProcess[str]:
    python = popen.pop("python", sys.executable)
    return subprocess.run([python, "-m", "berth.supervise.sandbox_check"], capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(WORKTREE)}, cwd="/",
                          **popen)


def test_as_root_every_isolation_holds_here(stack_root: Path) -> None:
    done = check()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["ok", "bubblewrap"], ["ok", "memory"], ["ok", "stack"],
                                                    ["ok", "namespaces"]]
    assert f"runs as uid {sandbox_account().uid}" in lines[-1]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the check as an unprivileged user")
def test_unprivileged_the_missing_memory_limit_is_reported_and_fails_the_check(stack_root: Path) -> None:
    account = sandbox_account()
    done = check(python=shutil.which("python3", path="/usr/bin:/bin"), **account.popen_kwargs())
    assert done.returncode == 1
    memory = next(line for line in done.stdout.splitlines() if "memory limit" in line)
    assert memory.startswith("NO") and "require_memory_limit=False" in memory
    assert done.stdout.splitlines()[-1].startswith("ok  namespaces")  # bwrap itself needs no root
