"""Starting, recognising and stopping the processes of local servers.

A server is started detached (a session of its own, so it outlives the process that started it
and no terminal signal reaches it) as its service account, from an argv list, never a shell
string. It is recognised by its pid *and* its command line, because a pid in a pid file may
have been reused by another process since; a zombie (which nobody reaped: PID 1 in a container
may not) counts as stopped. Stopping is SIGTERM, then SIGKILL after a grace period.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Sequence

from berth.supervise.accounts import ServiceAccount

__all__ = ["Children", "DoesNotStop", "alive", "command_line", "find", "run", "runs_with", "spawn", "stop",
           "without_berth_settings"]

_PROC = Path("/proc")
log = logging.getLogger(__name__)


class DoesNotStop(RuntimeError):
    """A process outlived SIGKILL's grace period."""


def without_berth_settings(environment: Mapping[str, str]) -> dict[str, str]:
    """`environment` less every BERTH_* setting (secrets among them): what a server needs to see."""
    return {key: value for key, value in environment.items() if not key.startswith("BERTH_")}


def spawn(argv: Sequence[str], account: ServiceAccount, *, cwd: Path | str, env: Mapping[str, str],
          stdin: int | IO[Any] | None = subprocess.DEVNULL, stdout: int | IO[Any] | None = None,
          stderr: int | IO[Any] | None = None, text: bool = False) -> "subprocess.Popen[Any]":
    """Start `argv` detached, as `account` (with its HOME/USER), in `cwd`, with `env` less Berth's
    own settings: a server's account can read its environment (/proc/<pid>/environ), and
    BERTH_SECRET_KEYS, the database URL and admin credentials are no business of it."""
    return subprocess.Popen(list(argv), cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr, text=text,
                            start_new_session=True, close_fds=True,
                            env=account.environment(without_berth_settings(env)),
                            **account.popen_kwargs())


def run(argv: Sequence[str], account: ServiceAccount, *, cwd: Path | str, env: Mapping[str, str],
        timeout: float) -> "subprocess.CompletedProcess[str]":
    """Run a tool to completion as `account`: no stdin, its output captured as text, its exit
    status left to the caller to judge. Like `spawn`, it never passes Berth's settings on."""
    return subprocess.run(list(argv), cwd=cwd, env=account.environment(without_berth_settings(env)),
                          **account.popen_kwargs(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False)


def alive(pid: int) -> bool:
    """A process `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        proc_stat = (_PROC / str(pid) / "stat").read_text()
        return proc_stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def command_line(pid: int) -> list[str] | None:
    """The arguments of `pid` (a server that rewrites its process title shows the title), or
    None when it cannot be read."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [word.decode(errors="replace") for word in raw.split(b"\0")]


def runs_with(pid: int | None, marker: str, *, whole_argument: bool = False) -> bool:
    """`pid` is alive and its command line names `marker` (a path unique to one server: its
    config file): one of its arguments when `whole_argument`, else anywhere in its text. With
    no /proc at all, a live pid is trusted."""
    if not pid or not alive(pid):
        return False
    words = command_line(pid)
    if words is None:
        return not _PROC.joinpath("self").exists()
    return marker in words if whole_argument else marker in " ".join(words)


def find(name: str, marker: str) -> int | None:
    """The pid of a process called `name` whose command line names `marker`: a server whose
    pid file is lost, or not written yet."""
    if not _PROC.is_dir():
        return None
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
        except OSError:
            continue
        if runs_with(int(entry.name), marker):
            return int(entry.name)
    return None


def stop(pid: int, running: Callable[[], bool], timeout: float, kill_timeout: float | None = 5.0) -> None:
    """SIGTERM (a server's orderly shutdown), SIGKILL once `timeout` has passed with `running()`
    still true; then wait `kill_timeout` (None: as long as it takes) and raise DoesNotStop if
    it is still there."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, kill_timeout)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = None if wait is None else time.monotonic() + wait
        while running() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.02)
        if not running():
            return
        if sig == signal.SIGTERM:
            log.warning("process %d did not stop within %g s; killing it", pid, timeout)
    raise DoesNotStop(f"process {pid} does not stop")


class Children:
    """Servers this process started and has not reaped. For these, the exit status is the truth
    (right after exec, /proc/<pid>/cmdline can still read empty), and asking reaps them."""

    def __init__(self) -> None:
        self._started: dict[int, subprocess.Popen[Any]] = {}
        self._exited: dict[int, int] = {}

    def add(self, process: "subprocess.Popen[Any]") -> None:
        self._started[process.pid] = process

    def running(self, pid: int) -> bool | None:
        """Whether child `pid` still runs (an exited one is reaped and forgotten); None when
        `pid` is no child of this process."""
        child = self._started.get(pid)
        if child is None:
            return None
        status = child.poll()
        if status is None:
            return True
        self._started.pop(pid, None)
        self._exited[pid] = status
        return False

    def exit_status(self, pid: int) -> int | None:
        """How child `pid` ended, once `running` has seen it gone (None before, or if unknown)."""
        return self._exited.get(pid)

    def forget(self, pid: int) -> None:
        """Reap child `pid` if it has exited, and stop tracking it."""
        child = self._started.pop(pid, None)
        if child is not None:
            child.poll()
        self._exited.pop(pid, None)
