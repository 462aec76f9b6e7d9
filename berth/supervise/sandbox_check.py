"""What sandbox isolation holds on this host: `python -m berth.supervise.sandbox_check`.

Each check starts the real thing (a sandbox, a memory cgroup) rather than reading kernel versions, so
the answer holds for this kernel, its sysctls and Berth's privileges. Exit status 1 when a sandbox
cannot start at all or its memory limit cannot be enforced.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from .cgroups import CgroupUnavailable, find_memory_hierarchy, memory_cgroup
from .sandbox import SandboxError, SandboxSpec, run, sandbox_account
from .stack import StackError, require_stack

__all__ = ["Check", "sandbox_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def sandbox_checks() -> list[Check]:
    checks = [_bubblewrap(), _memory_cgroup()]
    try:
        stack = require_stack()
    except StackError as exc:
        return [*checks, Check("stack", False, str(exc))]
    return [*checks, Check("stack", True, str(stack)), _namespaces(stack)]


def _bubblewrap() -> Check:
    try:
        done = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return Check("bubblewrap", False, "not installed (scripts/install-system-packages.sh)")
    return Check("bubblewrap", done.returncode == 0, done.stdout.strip() or done.stderr.strip())


def _memory_cgroup() -> Check:
    hierarchy = find_memory_hierarchy()
    try:
        memory_cgroup(f"check-{uuid.uuid4().hex[:8]}", 64 * 1024 * 1024, hierarchy).remove()
    except CgroupUnavailable as exc:
        return Check("memory limit", False, f"{exc}: sandboxes refuse to start unless require_memory_limit=False")
    assert hierarchy is not None
    return Check("memory limit", True, f"cgroup v{hierarchy.version} at {hierarchy.mount}")


def _namespaces(stack: Path) -> Check:
    """User, PID, IPC, UTS, network namespaces and the read-only stack, as the sandbox account."""
    with tempfile.TemporaryDirectory(prefix="berth-sandbox-check-") as parent:
        app = Path(parent) / "app"
        app.mkdir()
        lines: list[str] = []
        spec = SandboxSpec(stack=stack, app_dir=app, argv=["sh", "-c", "id -u; cat /proc/1/comm"],
                           account=sandbox_account(), memory_limit=None, network=False, name="check")
        try:
            result = run(spec, lines.append)
        except SandboxError as exc:
            return Check("namespaces", False, str(exc))
    ok = result.exit_code == 0 and len(lines) == 2 and lines[0] != "0" and lines[1] == "bwrap"
    detail = "user, pid, ipc, uts, net, mount; runs as uid " + lines[0] if ok else "\n".join(lines)
    return Check("namespaces", ok, detail)


def main() -> int:
    checks = sandbox_checks()
    for check in checks:
        print(f"{'ok' if check.ok else 'NO':3} {check.name:13} {check.detail}")
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
