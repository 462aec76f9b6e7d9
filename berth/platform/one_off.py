"""A one-off dyno's process (`heroku run`): one command from a release's slug in the sandbox, never
restarted, never routed; attached through the rendezvous server or detached into the app's log."""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping

from berth.platform.slug_runs import DEFAULT_MEMORY, RunResult, SlugRunner
from berth.platform.slugs import SlugError
from berth.supervise.sandbox import Sandbox, SandboxError
from berth.supervise.stack import StackError

log = logging.getLogger(__name__)
MAX_TIME_TO_LIVE = 86400  # Heroku's default and maximum for one-off dynos (seconds)
START_FAILED = 1  # an attached client's exit status when nothing could be started
STOP_GRACE_SECONDS = 30.0  # Heroku's for a stopped dyno: SIGTERM, then SIGKILL (R12) this much later
# What `heroku run --exit-code` (and `berth run`) append to the command to learn its exit status.
# Berth runs the command without it and reports the status itself, so that a command ending in
# `exit N` (which leaves before the echo would run) still tells the client its status.
EXIT_STATUS_REQUEST = ' ; echo "\uFFFF heroku-command-exit-status: $?"'
EXIT_STATUS_MARKER = "\uFFFF heroku-command-exit-status: {code}\n"


@dataclass
class OneOffRun:
    """One run of `command` as `dyno`; `on_end` hears how it ended (exit status, time limit...)."""

    runner: SlugRunner
    checksum: str
    command: str
    dyno: str
    config: Mapping[str, str]
    time_to_live: float = MAX_TIME_TO_LIVE
    tty: bool = False
    on_end: Callable[[RunResult | None, str], None] = lambda result, why: None
    on_up: Callable[[], None] = lambda: None  # its process started
    # Seconds of its time to live already gone when it starts (it counts from the dyno's creation).
    used: float = 0.0
    memory_limit: int = DEFAULT_MEMORY
    process_limit: int | None = None  # processes and threads, its size's (a fork bomb stops there)
    _sandbox: Sandbox | None = field(default=None, init=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False)

    def run(self, stdio: int) -> int:
        """Attached: the command's stdin, stdout and stderr are `stdio`; its exit status. A dyno that
        cannot start says why on `stdio` (the client's terminal) instead of raising."""
        command, report_status = split_exit_status_request(self.command)
        try:
            code = self._run(stdio=stdio, on_line=lambda line: None, command=command).exit_code
        except Exception as exc:  # noqa: BLE001 - told to the client, logged in full by _run
            _say(stdio, f"Error: {self.dyno} {start_failure(exc)}\r\n")
            code = START_FAILED
        if report_status:
            _say(stdio, EXIT_STATUS_MARKER.format(code=code))
        return code

    def run_detached(self, on_line: Callable[[str], None]) -> RunResult:
        """Detached: every output line to `on_line` (the app's log as `app[run.N]`)."""
        return self._run(stdio=None, on_line=on_line)

    def _run(self, stdio: int | None, on_line: Callable[[str], None], command: str | None = None) -> RunResult:
        if self._stopped.is_set():
            result = RunResult(exit_code=143, timed_out=False, oom_killed=False)
            self.on_end(result, "was stopped before it started")
            return result
        try:
            result = self.runner.run(self.checksum, command or self.command, dyno=self.dyno, config=self.config,
                                     on_line=on_line, timeout=max(1.0, self.time_to_live - self.used), stdio=stdio,
                                     memory_limit=self.memory_limit, pids_limit=self.process_limit,
                                     on_start=self._started)
        except Exception as exc:
            log.warning("%s could not start", self.dyno, exc_info=True)
            self.on_end(None, start_failure(exc))
            raise
        if stdio is not None and result.timed_out:
            _say(stdio, f"\r\nError: {self.dyno} reached its time limit of {int(self.time_to_live)} s "
                        "and was stopped.\r\n")
        self.on_end(result, result.describe())
        return result

    def _started(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.on_up()
        if self._stopped.is_set():
            sandbox.stop()

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM to every process of the dyno, SIGKILL after `grace` seconds (the sandbox's
        default when None); returns once it has ended. One not started yet never starts."""
        self._stopped.set()
        if self._sandbox is not None:
            self._sandbox.stop(grace)

    def abandon(self) -> None:
        self._stopped.set()
        self.on_end(None, "was never attached to (its attach URL expired)")


def split_exit_status_request(command: str) -> tuple[str, bool]:
    """The command without the client's exit-status request, and whether it asked."""
    if command.endswith(EXIT_STATUS_REQUEST) and len(command) > len(EXIT_STATUS_REQUEST):
        return command[:-len(EXIT_STATUS_REQUEST)], True
    return command, False


def start_failure(exc: BaseException) -> str:
    """Why a dyno could not start, in words for its owner (a tenant): what to do, no host details
    beyond what the operator's log has in full."""
    if isinstance(exc, StackError):
        return ("could not start: this Berth cannot run dynos yet because its stack is not built "
                "(the operator runs `make setup`).")
    if isinstance(exc, SlugError):
        return f"could not start: its release's slug cannot be used ({exc}); deploy the app again."
    if isinstance(exc, SandboxError):
        return "could not start: the sandbox is not available on this machine (the operator's log says why)."
    return "could not start because of an error in Berth (the operator's log says why)."


def _say(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode())
    except OSError:
        pass
