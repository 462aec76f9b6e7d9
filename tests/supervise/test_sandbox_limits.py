"""Limits: memory through a cgroup made before exec, time through killing the whole tree, and what
happens where no memory cgroup can be made."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from berth.supervise.cgroups import PARENT, find_memory_hierarchy
from berth.supervise.sandbox import Sandbox, sandbox_account

pytestmark = pytest.mark.slow
WORKTREE = Path(__file__).resolve().parents[2]


def host_processes_with(marker: str, command: str | None = None) -> list[int]:
    """Host PIDs whose command line holds `marker` (bwrap's and sh's too, unless `command` is named)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace") and (
                        command is None or Path(f"/proc/{entry}/comm").read_text().strip() == command):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def berth_cgroups(named: str) -> set[str]:
    """The memory cgroups of sandboxes called `named` (other tests' sandboxes come and go meanwhile)."""
    hierarchy = find_memory_hierarchy()
    assert hierarchy is not None
    parent = hierarchy.mount / PARENT
    return {p.name for p in parent.iterdir() if p.is_dir() and p.name.startswith(f"{named}-")} if parent.is_dir() else set()


def test_a_memory_hog_is_killed_by_the_limit_and_its_cgroup_removed(sandbox) -> None:
    name = f"hog-{secrets.randbelow(10**6)}"
    ran = sandbox("python3", "-c", "block = bytearray(400 * 1024 * 1024); print('survived')",
                  memory_limit=64 * 1024 * 1024, name=name)
    assert "survived" not in ran.lines
    assert ran.result.exit_code == 137 and ran.result.oom_killed and ran.result.memory_limited
    assert berth_cgroups(name) == set()


def test_a_process_within_its_limit_is_left_alone(sandbox) -> None:
    ran = sandbox("python3", "-c", "block = bytearray(32 * 1024 * 1024); print('fine')",
                  memory_limit=128 * 1024 * 1024)
    assert ran.lines == ["fine"] and ran.result.exit_code == 0 and not ran.result.oom_killed


def test_a_timeout_kills_the_whole_tree_even_what_ignores_sigterm_or_double_forked(sandbox) -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}"
    script = (
        "trap '' TERM; "  # the program itself ignores SIGTERM
        f"(trap '' TERM; exec sleep 100{marker}) & "  # so does a child
        f"setsid sh -c 'sleep 200{marker} & exit 0' & "  # a double-forked daemon, reparented to init
        "echo started; "
        f"while :; do sleep 300{marker}; done")
    started = time.monotonic()
    ran = sandbox.sh(script, timeout=1.5, stop_grace=0.5)
    elapsed = time.monotonic() - started
    assert ran.lines == ["started"]
    assert ran.result.timed_out and ran.result.exit_code == 137
    assert elapsed < 5
    assert host_processes_with(marker) == []


def test_stop_ends_a_running_sandbox_and_what_it_started(sandbox) -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}"
    name = f"stop-{marker}"
    running = Sandbox(replace(sandbox.spec, argv=["sh", "-c", f"sleep 400{marker} & sleep 500{marker}"],
                              timeout=None, name=name))
    assert len(berth_cgroups(name)) == 1
    reader = threading.Thread(target=lambda: list(running.lines()))
    reader.start()
    deadline = time.monotonic() + 5
    while len(host_processes_with(marker, "sleep")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(host_processes_with(marker, "sleep")) == 2
    result = running.stop(grace=2)
    reader.join(5)
    assert result.exit_code == 143 and not result.timed_out  # sh ended on SIGTERM, within the grace
    assert host_processes_with(marker) == []
    assert berth_cgroups(name) == set() and running.wait() == result


def test_what_a_program_leaves_running_dies_with_it(sandbox) -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}"
    ran = sandbox.sh(f"setsid sh -c 'sleep 600{marker} & exit 0'; sleep 0.2; echo leaving")
    assert ran.lines == ["leaving"] and ran.result.exit_code == 0
    assert host_processes_with(marker) == []


UNPRIVILEGED_BERTH = """
import json, sys
from pathlib import Path
from berth.supervise.accounts import ServiceAccount
from berth.supervise.sandbox import SandboxError, SandboxSpec, run
stack, app, required = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "required"
lines = []
spec = SandboxSpec(stack=stack, app_dir=app, argv=["sh", "-c", "echo ran"], account=ServiceAccount(None),
                   memory_limit=64 * 1024 * 1024, require_memory_limit=required, network=False)
try:
    result = run(spec, lines.append)
except SandboxError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"lines": lines, "exit_code": result.exit_code, "memory_limited": result.memory_limited}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run Berth as an unprivileged user")
@pytest.mark.parametrize("policy", ["required", "optional"])
def test_without_a_writable_memory_cgroup_berth_refuses_or_warns_never_silently(stack_root: Path,
                                                                               policy: str) -> None:
    """Berth run as an unprivileged user cannot make cgroups: by default it refuses to start the
    sandbox, saying why and what to do; asked to run without a limit, it says so in the output."""
    account = sandbox_account()
    app = Path(tempfile.mkdtemp(prefix="berth-unprivileged-"))
    try:
        os.chown(app, account.uid, account.gid)
        # The system's python3: the venv's interpreter may sit in root's home. The launcher needs
        # nothing beyond the standard library.
        python = shutil.which("python3", path="/usr/bin:/bin")
        done = subprocess.run([python, "-c", UNPRIVILEGED_BERTH, str(stack_root), str(app), policy],
                              capture_output=True, text=True, timeout=60, cwd=app,
                              env={"PATH": os.environ["PATH"], "PYTHONPATH": str(WORKTREE)},
                              **account.popen_kwargs())
    finally:
        shutil.rmtree(app)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    if policy == "required":
        assert "cannot enforce the memory limit" in outcome["error"]
        assert "require_memory_limit=False" in outcome["error"]
    else:
        assert outcome["lines"][0].startswith(" !     Warning: this process runs without a memory limit")
        assert outcome["lines"][1:] == ["ran"]
        assert outcome["exit_code"] == 0 and outcome["memory_limited"] is False
