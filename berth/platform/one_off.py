"""A one-off dyno's process (`heroku run`): one command from a release's slug in the sandbox, never
restarted, never routed; attached through the rendezvous server or detached into the app's log."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping

from berth.platform.slug_runs import RunResult, SlugRunner
from berth.supervise.sandbox import Sandbox

MAX_TIME_TO_LIVE = 86400  # Heroku's default and maximum for one-off dynos (seconds)


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
    _sandbox: Sandbox | None = field(default=None, init=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False)

    def run(self, stdio: int) -> int:
        """Attached: the command's stdin, stdout and stderr are `stdio`; its exit status."""
        result = self._run(stdio=stdio, on_line=lambda line: None)
        return result.exit_code

    def run_detached(self, on_line: Callable[[str], None]) -> RunResult:
        """Detached: every output line to `on_line` (the app's log as `app[run.N]`)."""
        return self._run(stdio=None, on_line=on_line)

    def _run(self, stdio: int | None, on_line: Callable[[str], None]) -> RunResult:
        if self._stopped.is_set():
            result = RunResult(exit_code=143, timed_out=False, oom_killed=False)
            self.on_end(result, "was stopped before it started")
            return result
        try:
            result = self.runner.run(self.checksum, self.command, dyno=self.dyno, config=self.config,
                                     on_line=on_line, timeout=self.time_to_live, stdio=stdio,
                                     on_start=self._started)
        except Exception as exc:
            self.on_end(None, f"could not start: {exc}")
            raise
        if stdio is not None and result.timed_out:
            _say(stdio, f"\r\nError: {self.dyno} reached its time limit of {int(self.time_to_live)} s "
                        "and was stopped.\r\n")
        self.on_end(result, result.describe())
        return result

    def _started(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        if self._stopped.is_set():
            sandbox.stop()

    def stop(self) -> None:
        self._stopped.set()
        if self._sandbox is not None:
            self._sandbox.stop()

    def abandon(self) -> None:
        self._stopped.set()
        self.on_end(None, "was never attached to (its attach URL expired)")


def _say(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode())
    except OSError:
        pass
