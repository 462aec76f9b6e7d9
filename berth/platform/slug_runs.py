"""Running one command from a release's slug in the sandbox: the release phase, app.json's
`postdeploy`, and (later) one-off and formation dynos all start their process here.

    runner = SlugRunner(store, data_dir / "runs")
    result = runner.run(slug_checksum, "python migrate.py", dyno="release.3", config=release_config,
                        on_line=print, timeout=3600)

The slug is read from the store, which checks it against its sha256 before anything is unpacked,
and unpacked with the slug unpacker (`slugs.unpack`: tenant input, never written through a link,
bounded in size and entries; symlinks kept whatever their target, as they only resolve inside) into a fresh directory of Berth's that becomes the sandbox's /app.
Inside, bash sources `/app/.profile.d/*.sh`, then `/app/.profile`, then runs the command through
bash (so `$PORT` and friends expand), Heroku's order (runtime.md §1.4, §6.1). The directory is
removed afterwards, whatever happened.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from berth.platform.buildpack_runner.pythons import language_binds, pythons_dir
from berth.platform.dyno_process import dyno_argv, dyno_environment
from berth.platform.slug_store import SlugStore, unpack_slug
from berth.platform.slugs import UnpackLimits
from berth.supervise.sandbox import Bind, Sandbox, SandboxSpec, run, sandbox_account
from berth.supervise.stack import require_stack

__all__ = ["DEFAULT_MEMORY", "RunResult", "SlugRunner", "dyno_environment"]

DEFAULT_MEMORY = 512 * 1024 * 1024  # a standard-1x dyno's quota (runtime.md §6.7)


@dataclass(frozen=True)
class RunResult:
    exit_code: int  # 128+N when killed by signal N
    timed_out: bool
    oom_killed: bool

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed

    def describe(self) -> str:
        """How it ended, in words for a log line or a release's failure message."""
        if self.timed_out:
            return "timed out and was stopped"
        if self.oom_killed:
            return "ran out of memory and was stopped"
        if self.exit_code > 128:
            return f"was killed by signal {self.exit_code - 128}"
        return f"exited with status {self.exit_code}"


class SlugRunner:
    """Runs commands from stored slugs; `scratch` is a directory of Berth's (only Berth writes its
    parent) where each run's /app is unpacked and removed again."""

    def __init__(self, store: SlugStore, scratch: Path, *, stack: Path | None = None,
                 require_memory_limit: bool = True, limits: UnpackLimits = UnpackLimits()) -> None:
        self.store, self.scratch, self._stack = store, scratch, stack
        self.require_memory_limit, self.limits = require_memory_limit, limits
        # What the slug links to outside itself: an operator's CPython its virtualenv was built on.
        self.binds: Sequence[Bind] = language_binds(pythons_dir(os.environ))

    def run(self, checksum: str, command: str, *, dyno: str, config: Mapping[str, str],
            on_line: Callable[[str], None], timeout: float | None, memory_limit: int | None = DEFAULT_MEMORY,
            port: int | None = None, stdio: int | None = None,
            on_start: Callable[[Sandbox], None] | None = None, pids_limit: int | None = None) -> RunResult:
        """Run `command` from the slug `checksum` as dyno `dyno`; every output line goes to
        `on_line`, or with `stdio` (an attached one-off dyno) to that descriptor, which is also its stdin;
        `on_start` gets the started sandbox (to stop it early); `pids_limit` bounds its processes and
        threads (a dyno size's). Raises SlugError (the slug is missing, altered or unsafe) and SandboxError
        (no sandbox here) before the command starts; its own failures are in the result."""
        stack = self._stack or require_stack()
        self.scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix=f"{_safe(dyno)}-", dir=self.scratch))  # 0700, Berth's
        try:
            app_dir = work / "app"
            # Symlinks may point anywhere: inside the sandbox they resolve against the stack.
            unpack_slug(self.store, checksum, app_dir, self.limits, links_anywhere=True)
            spec = SandboxSpec(stack=stack, app_dir=app_dir, app_writable=True,  # Heroku's /app is writable
                               argv=dyno_argv(command),
                               account=sandbox_account(), binds=self.binds,
                               env=dyno_environment(config, dyno, port),
                               memory_limit=memory_limit, require_memory_limit=self.require_memory_limit,
                               timeout=timeout, name=_safe(dyno), stdio=stdio, pids_limit=pids_limit)
            result = run(spec, on_line, on_start)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return RunResult(result.exit_code, result.timed_out, result.oom_killed)


def _safe(dyno: str) -> str:
    """The dyno name as a hostname and file-name part (`release.3` → `release-3`)."""
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in dyno)[:50]
    return cleaned or "dyno"
