"""One-off dynos on the swarm (BERTH_RUNNER=swarm): a detached `heroku run:detached` is a one-task
Swarm service that is never restarted, made from the release's image like formation dynos, its
output in the app's log, removed once it has ended. The rendezvous host drives it through the same
`run()` as the local SlugRunner.

An attached run (`heroku run`) has the client's terminal on the rendezvous host, and the manager
cannot attach to a task's container on another machine: with each node's own engine configured
(BERTH_SWARM_NODE_ENGINES) it runs on a swarm machine, attached through that machine's engine
(swarm_attach.py); without them it runs in the local sandbox as before.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Callable, Mapping

from berth.platform.dynos.backend import DynoError, DynoSize
from berth.platform.dynos.swarm import SwarmBackend
from berth.platform.dynos.swarm_attach import AttachedOneOffs
from berth.platform.dynos.swarm_logs import parse_frame
from berth.platform.dynos.swarm_spec import ServiceSpec
from berth.platform.slug_runs import DEFAULT_MEMORY, RunResult, SlugRunner

__all__ = ["SwarmSlugRunner"]

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
ENDED = ("complete", "failed", "shutdown", "rejected", "orphaned", "remove")
OUTPUT_WAIT_SECONDS = 5.0  # for the last lines of an ended task to come through the manager


class _Stopper:
    """What OneOffRun holds to stop a run early (a sandbox locally): removing the service sends
    SIGTERM, then SIGKILL after the stop grace."""

    def __init__(self, backend: SwarmBackend, service_id: str) -> None:
        self.backend, self.service_id = backend, service_id
        self.stopped = threading.Event()

    def stop(self, grace: float | None = None) -> None:
        self.stopped.set()
        self.backend.remove_service_id(self.service_id)


class SwarmSlugRunner:
    def __init__(self, backend: SwarmBackend, image_of: Callable[[str], str], local: SlugRunner,
                 attached: AttachedOneOffs | None = None) -> None:
        self.backend, self.image_of, self.local, self.attached = backend, image_of, local, attached

    def run(self, checksum: str, command: str, *, dyno: str, config: Mapping[str, str],
            on_line: Callable[[str], None], timeout: float | None, memory_limit: int | None = DEFAULT_MEMORY,
            port: int | None = None, stdio: int | None = None, on_start: Callable[[Any], None] | None = None,
            pids_limit: int | None = None) -> RunResult:
        if stdio is not None and self.attached is not None:  # on a swarm machine, through its engine
            return self.attached.run(checksum, command, dyno=dyno, config=config, stdio=stdio, timeout=timeout,
                                     memory_limit=memory_limit or DEFAULT_MEMORY, pids_limit=pids_limit,
                                     on_start=on_start)
        if stdio is not None:  # attached, no node engines: the client's terminal is here
            return self.local.run(checksum, command, dyno=dyno, config=config, on_line=on_line, timeout=timeout,
                                  memory_limit=memory_limit, port=port, stdio=stdio, on_start=on_start,
                                  pids_limit=pids_limit)
        memory = memory_limit or DEFAULT_MEMORY
        spec = ServiceSpec(app_id=str(uuid.uuid4()), process_type=dyno, quantity=1, command=command,
                           size=DynoSize("one-off", memory, memory, pids_limit or 256), size_key="",
                           release_id="", release_version=0, image=self.image_of(checksum), env=dict(config),
                           one_off=True)
        started = time.time()
        created = self.backend.create(spec)
        stopper = _Stopper(self.backend, created)
        output = threading.Thread(target=self._forward, args=(created, started, on_line), daemon=True,
                                  name=f"one-off-output-{dyno}")
        output.start()
        try:
            result = self._wait(created, stopper, on_start, timeout, started)
            output.join(OUTPUT_WAIT_SECONDS)
            return result
        finally:
            self.backend.remove_service_id(created)

    def _wait(self, service_id: str, stopper: _Stopper, on_start: Callable[[Any], None] | None,
              timeout: float | None, started: float) -> RunResult:
        told_up = False
        while True:
            task = self.backend.task_of(service_id)
            state = (task or {}).get("Status", {}).get("State", "")
            if state == "running" and not told_up and on_start is not None:
                told_up = True
                on_start(stopper)
            if state in ENDED:
                code = ((task or {}).get("Status", {}).get("ContainerStatus") or {}).get("ExitCode")
                return RunResult(exit_code=int(code) if code is not None else 1, timed_out=False, oom_killed=False)
            if task is None and stopper.stopped.is_set():
                return RunResult(exit_code=143, timed_out=False, oom_killed=False)
            if timeout is not None and time.time() - started > timeout:
                stopper.stop()
                return RunResult(exit_code=137, timed_out=True, oom_killed=False)
            time.sleep(POLL_SECONDS)

    def _forward(self, service_id: str, since: float, on_line: Callable[[str], None]) -> None:
        try:
            for frame in self.backend.logs(service_id, since - 1):
                parsed = parse_frame(frame)
                if parsed is not None:
                    on_line(parsed[2])
        except DynoError as exc:  # removed: the run is over
            log.debug("the output of one-off service %s ended: %s", service_id, exc)
