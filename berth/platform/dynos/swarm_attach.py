"""An attached one-off dyno (`heroku run bash`) on a swarm machine: a container made from the release's
image on one ready node's own engine (swarm_engines.py), attached before it starts (nothing it
prints is lost), its terminal bridged to the client's rendezvous stream, removed after the run.

Not a Swarm task: a task starts as soon as it is scheduled, before anyone could attach, and the
manager cannot attach to a task on another machine. The node is picked at random among the ready
ones that have an engine configured. The container runs as the dyno user (DYNO_USER) with every
capability dropped, no new privileges, the size's memory (no swap) and process limits, an init
that reaps orphans, and no log driver (an attached run's output is the client's, not the log's).

The run's bytes are only passed along: a TTY run's as they come, a piped run's out of the engine's
stdout/stderr frames (whose headers the engine writes, never the tenant). The local end is the
rendezvous bridge's descriptor: a PTY (put in raw mode: the container's own TTY echoes and edits)
or a socket whose end of input becomes the container's. Initial terminal size from the client's
COLUMNS and LINES; Heroku's protocol carries no later resize.
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import socket
import struct
import threading
import time
import tty
from typing import Any, Callable, Mapping

from docker.errors import NotFound

from berth.platform.dyno_process import dyno_argv, dyno_environment
from berth.platform.dynos.backend import DynoError
from berth.platform.dynos.images import DYNO_USER
from berth.platform.dynos.swarm import SwarmBackend
from berth.platform.dynos.swarm_engines import EngineError, NodeEngines
from berth.platform.slug_runs import RunResult

__all__ = ["AttachedOneOffs", "ATTACHED_LABEL"]

log = logging.getLogger(__name__)
ATTACHED_LABEL = "berth.attached_one_off"  # value: the rendezvous host that made it
PULL_SECONDS = 600.0  # a node's first pull of the stack image
FRAME_HEADER = struct.Struct(">BxxxL")  # stream (1 stdout, 2 stderr), payload length
STOP_GRACE = 10.0  # when the attach ends while the container still runs (a detach sequence typed)


class _Stopper:
    """What OneOffRun holds to stop the run early: `docker stop` on its node (SIGTERM, SIGKILL after)."""

    def __init__(self, engines: NodeEngines, node: str, container: str) -> None:
        self.engines, self.node, self.container = engines, node, container
        self.stopped = threading.Event()

    def stop(self, grace: float | None = None) -> None:
        self.stopped.set()
        with contextlib.suppress(NotFound, EngineError):
            self.engines.call(self.node, "stop", self.container, timeout=int(grace if grace is not None else 30))

    def kill(self) -> None:
        """SIGKILL at once (its time to live is over), as the local sandbox does."""
        self.stopped.set()
        with contextlib.suppress(EngineError):
            self.engines.kill(self.node, self.container)


class AttachedOneOffs:
    def __init__(self, backend: SwarmBackend, engines: NodeEngines, image_of: Callable[[str], str],
                 host: str = "") -> None:
        self.backend, self.engines, self.image_of, self.host = backend, engines, image_of, host or "rendezvous"

    def run(self, checksum: str, command: str, *, dyno: str, config: Mapping[str, str], stdio: int,
            timeout: float | None, memory_limit: int, pids_limit: int | None,
            on_start: Callable[[Any], None] | None = None) -> RunResult:
        """Run `command` attached to `stdio` on a swarm machine; raises DynoError before it starts."""
        image = self.image_of(checksum)
        node = self._pick_node()
        self._pull(node, image)
        terminal = os.isatty(stdio)
        container = self._create(node, image, command, dyno, config, memory_limit, pids_limit, terminal)
        try:
            return self._attached(node, container, stdio, terminal, config, timeout, on_start)
        finally:
            with contextlib.suppress(EngineError):
                self._remove(node, container)

    def remove_leftovers(self) -> int:
        """Containers this host made that a killed host left on any node; how many were removed."""
        removed = 0
        for node in self.engines.nodes:
            try:
                found = self.engines.call(node, "containers", all=True,
                                          filters={"label": f"{ATTACHED_LABEL}={self.host}"})
            except EngineError as exc:
                log.warning("attached one-offs left on %s could not be listed: %s", node, exc)
                continue
            for container in found:
                with contextlib.suppress(EngineError):
                    self._remove(node, container["Id"])
                    removed += 1
        return removed

    # -- making it ---------------------------------------------------------------------------------

    def _pick_node(self) -> str:
        ready = [name for name in self.backend.ready_nodes() if self.engines.knows(name)]
        if not ready:
            raise DynoError("no ready swarm machine has its engine configured (BERTH_SWARM_NODE_ENGINES)")
        return random.choice(ready)

    def _pull(self, node: str, image: str) -> None:
        try:
            self.engines.call(node, "inspect_image", image)
            return
        except NotFound:
            pass
        client = self.engines.client(node, timeout=PULL_SECONDS)
        try:
            client.pull(image)
        except Exception as exc:  # noqa: BLE001 - the SDK's errors name the image, not the endpoint
            raise EngineError(f"Swarm node {node} could not pull the release's image: "
                              f"{getattr(exc, 'explanation', None) or type(exc).__name__}") from None
        finally:
            client.close()

    def _create(self, node: str, image: str, command: str, dyno: str, config: Mapping[str, str],
                memory_limit: int, pids_limit: int | None, terminal: bool) -> str:
        client = self.engines.client(node)
        host_config = client.create_host_config(
            mem_limit=memory_limit, memswap_limit=memory_limit, pids_limit=pids_limit or 256, cap_drop=["ALL"],
            security_opt=["no-new-privileges"], init=True, log_config={"Type": "none", "Config": {}})
        made = self.engines.call(
            node, "create_container", image, command=dyno_argv(command),
            environment=dyno_environment(config, dyno, None), user=DYNO_USER, working_dir="/app",
            tty=terminal, stdin_open=True, labels={ATTACHED_LABEL: self.host}, host_config=host_config)
        return str(made["Id"])

    def _remove(self, node: str, container: str) -> None:
        with contextlib.suppress(NotFound):
            self.engines.call(node, "remove_container", container, force=True)

    # -- running it --------------------------------------------------------------------------------

    def _attached(self, node: str, container: str, stdio: int, terminal: bool, config: Mapping[str, str],
                  timeout: float | None, on_start: Callable[[Any], None] | None) -> RunResult:
        client = self.engines.client(node)
        try:
            response = client.attach_socket(container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        except Exception as exc:  # noqa: BLE001
            raise EngineError(f"Swarm node {node} refused to attach: "
                              f"{getattr(exc, 'explanation', None) or type(exc).__name__}") from None
        stream: socket.socket = getattr(response, "_sock", response)
        stream.settimeout(None)
        if terminal:
            tty.setraw(stdio)  # the container's terminal does the echo and line editing
        self.engines.call(node, "start", container)
        if terminal:
            self._resize(node, container, config)
        stopper = _Stopper(self.engines, node, container)
        if on_start is not None:
            on_start(stopper)
        done = threading.Event()
        timed_out = threading.Event()
        feeder = threading.Thread(target=_client_to_container, args=(stdio, stream, done), daemon=True,
                                  name="attached-in")
        feeder.start()
        if timeout is not None:
            threading.Thread(target=self._time_limit, args=(stopper, timeout, done, timed_out), daemon=True,
                             name="attached-ttl").start()
        try:
            _container_to_client(stream, stdio, terminal)
        finally:
            done.set()
            with contextlib.suppress(OSError):
                stream.close()
        return self._result(node, container, stopper, timed_out.is_set())

    def _resize(self, node: str, container: str, config: Mapping[str, str]) -> None:
        try:
            width, height = int(config.get("COLUMNS", "")), int(config.get("LINES", ""))
        except ValueError:
            return
        if 0 < width < 10000 and 0 < height < 10000:
            with contextlib.suppress(EngineError, NotFound):
                self.engines.call(node, "resize", container, height=height, width=width)

    @staticmethod
    def _time_limit(stopper: _Stopper, timeout: float, done: threading.Event, timed_out: threading.Event) -> None:
        if not done.wait(timeout):
            timed_out.set()
            stopper.kill()

    def _result(self, node: str, container: str, stopper: _Stopper, timed_out: bool) -> RunResult:
        """The container's end; one still running after the attach ended (a detach sequence the
        client typed, the engine dropping the stream) is stopped: the session is over."""
        state = self._state(node, container)
        if state.get("Running"):
            stopper.stop(STOP_GRACE)
            deadline = time.monotonic() + STOP_GRACE + 5
            while (state := self._state(node, container)).get("Running") and time.monotonic() < deadline:
                time.sleep(0.2)
        code = state.get("ExitCode")
        return RunResult(exit_code=int(code) if code is not None else 1, timed_out=timed_out,
                         oom_killed=bool(state.get("OOMKilled")))

    def _state(self, node: str, container: str) -> dict[str, Any]:
        try:
            return dict((self.engines.call(node, "inspect_container", container) or {}).get("State") or {})
        except NotFound:
            return {}


def _client_to_container(stdio: int, stream: socket.socket, done: threading.Event) -> None:
    """What the client sends, to the container's stdin; its end of input (a piped run), its end."""
    while not done.is_set():
        if not select.select([stdio], [], [], 0.2)[0]:
            continue
        try:
            data = os.read(stdio, 65536)
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(OSError):
                stream.shutdown(socket.SHUT_WR)
            return
        try:
            stream.sendall(data)
        except OSError:
            return


def _container_to_client(stream: socket.socket, stdio: int, terminal: bool) -> None:
    """The container's output to the client until the engine ends the stream (the container exited)."""
    pending = b""
    while True:
        try:
            data = stream.recv(65536)
        except OSError:
            return
        if not data:
            return
        if terminal:
            _write(stdio, data)
            continue
        pending += data
        while len(pending) >= FRAME_HEADER.size:
            _, length = FRAME_HEADER.unpack_from(pending)
            if len(pending) < FRAME_HEADER.size + length:
                break
            _write(stdio, pending[FRAME_HEADER.size:FRAME_HEADER.size + length])
            pending = pending[FRAME_HEADER.size + length:]


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            select.select([], [fd], [])
            view = view[os.write(fd, view):]
        except OSError:  # the client's side is gone: the rest has nobody to read it
            return
