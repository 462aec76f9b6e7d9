"""The keeper of one local dyno: `python -m berth.platform.dynos.keeper <dyno dir>`.

The backend starts it detached (a session of its own), so the dyno outlives the runner; the keeper is
the sandbox's parent (bwrap dies with it, and with bwrap every process of the dyno). It drains the
dyno's output into `output.log` as fast as it comes (the dyno never waits on a reader), records the
dyno's state, watches its memory (R14 over quota, R15 and stopped at the kill threshold) and a web
dyno's boot (R10 and killed when $PORT is not bound within the boot timeout), and on
SIGTERM stops the dyno: SIGTERM to every process, SIGKILL after the grace (R12).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from berth.jobs.wakeup import nudge_runner
from berth.platform.buildpack_runner.pythons import language_binds, pythons_dir
from berth.platform.dynos.backend import BOOT_TIMEOUT
from berth.platform.dynos.output import ROTATE_BYTES, OutputLog
from berth.platform.dyno_process import dyno_argv, dyno_environment
from berth.platform.dynos.records import process_start_time, read_json, write_json
from berth.supervise.ports import listening
from berth.supervise.sandbox import Sandbox, SandboxError, SandboxSpec, sandbox_account

R14_EVERY = 20.0  # seconds between R14 lines while a dyno stays over its quota
SAMPLE_EVERY = 0.5
# While booting, how often to look for the bound port: the router adds the dyno only once it is up,
# and this lag was ~1/3 of what a scale-up spends between a dyno binding and its first request.
BOOT_SAMPLE_EVERY = 0.01
# The states the runner acts on (routes to an up dyno, restarts a crashed one, removes a down one):
# the keeper wakes it for these at once. `starting` it learns from its own rounds.
NUDGED_STATES = ("up", "crashed", "down")


class Keeper:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.meta: dict[str, Any] = read_json(directory / "meta.json") or {}
        self.output = OutputLog(directory / "output.log", self.meta.get("output_rotate_bytes", ROTATE_BYTES))
        self.stop_requested = threading.Event()
        self.state = "starting"
        self.cgroups: list[str] = []
        self.pid, self.start_time = os.getpid(), process_start_time(os.getpid())

    # -- records -------------------------------------------------------------------------------------

    def say(self, source: str, text: str) -> None:
        self.output.write(source, text)

    def record(self, state: str, exit_status: int | None = None) -> None:
        if state != self.state:
            self.say("heroku", f"State changed from {self.state} to {state}")
        self.state = state
        write_json(self.directory / "state.json",
                   {"state": state, "exit_status": exit_status, "keeper_pid": self.pid,
                    "keeper_start": self.start_time, "cgroups": self.cgroups, "updated": time.time()})
        # Tell the runner now rather than at its next poll; not of `starting` (each woken round costs
        # the runner CPU that ten dynos booting at once need). The records live at <data dir>/dynos/<id>.
        if state in NUDGED_STATES:
            nudge_runner(self.directory.parent.parent)

    # -- running -------------------------------------------------------------------------------------

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_requested.set())
        env_file = self.directory / "env.json"
        config = read_json(env_file) or {}
        env_file.unlink(missing_ok=True)
        meta = self.meta
        self.record("starting")
        self.say("heroku", f"Starting process with command `{meta['command']}`")
        spec = SandboxSpec(
            stack=Path(meta["stack"]), app_dir=self.directory / "app", app_writable=True,
            argv=dyno_argv(meta["command"]),
            account=sandbox_account(), binds=language_binds(pythons_dir(os.environ)),
            env=dyno_environment(config, meta["name"], meta.get("port")),
            memory_limit=meta["memory_kill"], require_memory_limit=meta["require_memory_limit"],
            pids_limit=meta["processes"], stop_grace=meta["grace"], name=meta["cgroup_name"])
        try:
            sandbox = Sandbox(spec)
        except SandboxError as exc:
            self.say("heroku", f"Error: the dyno could not start: {exc}")
            self.record("crashed", None)
            return 1
        self.cgroups = [str(group.path) for group in (sandbox.cgroup, sandbox.pids_cgroup) if group]
        for warning in sandbox.warnings:
            self.say("heroku", warning)
        reader = threading.Thread(target=self._drain, args=(sandbox,), daemon=True)
        reader.start()
        if meta.get("port") is None:
            self.record("up")
        else:
            self.record("starting")
        stopped, killed_for = self._watch(sandbox)
        result = sandbox.stop(0) if not stopped else stopped
        reader.join(timeout=30)  # the rest of the output, still in the pipe
        if killed_for == "R15":
            self.say("heroku", "Error R15 (Memory quota vastly exceeded)")
            self.say("heroku", "Stopping process with SIGKILL")
        elif killed_for == "R10":
            self.say("heroku", f"Error R10 (Boot timeout) -> Web process failed to bind to $PORT within "
                               f"{meta['boot_timeout']:g} seconds of launch")
            self.say("heroku", "Stopping process with SIGKILL")
        if result.exit_code == 137 and stopped and not killed_for and self._grace_ran_out:
            self.say("heroku", f"Error R12 (Exit timeout) -> At least one process failed to exit within "
                               f"{meta['grace']:g} seconds of SIGTERM")
            self.say("heroku", "Stopping remaining processes with SIGKILL")
        self.say("heroku", f"Process exited with status {result.exit_code}")
        self.record("down" if self.stop_requested.is_set() else "crashed", result.exit_code)
        return 0

    _grace_ran_out = False

    def _drain(self, sandbox: Sandbox) -> None:
        for line in sandbox.lines():
            self.say("app", line)

    def _watch(self, sandbox: Sandbox) -> tuple[Any, str | None]:
        """Until the dyno ends or is to stop: its state, its memory, its boot. Returns (stop result, the
        error it was killed for: R10, R15 or None)."""
        port, quota, kill_at = self.meta.get("port"), self.meta["memory"], self.meta["memory_kill"]
        # Older records (dynos started before boot timeouts existed) get Heroku's 60 s.
        boot_deadline = time.monotonic() + self.meta.setdefault("boot_timeout", BOOT_TIMEOUT)
        last_r14 = last_sample = 0.0
        while sandbox.process.poll() is None:
            # While booting, look for the bound port often (BOOT_SAMPLE_EVERY).
            if self.stop_requested.wait(BOOT_SAMPLE_EVERY if self.state == "starting" else SAMPLE_EVERY):
                self.say("heroku", "Stopping all processes with SIGTERM")
                # The backend records the grace of this stop in meta.json before signalling.
                self.meta["grace"] = (read_json(self.directory / "meta.json") or self.meta)["grace"]
                began = time.monotonic()
                result = sandbox.stop(self.meta["grace"])
                self._grace_ran_out = time.monotonic() - began >= self.meta["grace"]
                return result, None
            if self.state == "starting" and port is not None:
                if listening("127.0.0.1", port, 0.05):
                    self.record("up")
                elif time.monotonic() >= boot_deadline:
                    return sandbox.stop(0), "R10"
            if time.monotonic() - last_sample < SAMPLE_EVERY:
                continue  # the memory every SAMPLE_EVERY, booting or not (an OOM kill ends the dyno anyway)
            last_sample = time.monotonic()
            used = self._memory(sandbox)
            if sandbox.cgroup is not None and sandbox.cgroup.oom_kills() > 0 or used >= kill_at:
                return sandbox.stop(0), "R15"
            if used > quota and time.monotonic() - last_r14 >= R14_EVERY:
                last_r14 = time.monotonic()
                self.say("heroku", f"Process running mem={used // 2**20}M({100 * used / quota:.1f}%)")
                self.say("heroku", "Error R14 (Memory quota exceeded)")
        return None, None

    @staticmethod
    def _memory(sandbox: Sandbox) -> int:
        """Bytes the dyno uses: RSS + swap from its memory cgroup, else the sum of its processes' RSS."""
        if sandbox.cgroup is not None:
            return sandbox.cgroup.resident()
        total = 0
        for pid in sandbox.members():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except (OSError, ValueError):
                continue
        return total


def main(argv: list[str]) -> int:
    directory = Path(argv[1])
    return Keeper(directory).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
