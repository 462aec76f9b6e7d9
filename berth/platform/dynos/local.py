"""The local dyno backend: each dyno a sandbox (`berth.supervise.sandbox`) on this host, kept by a
detached keeper process (`keeper.py`), its records under `<data dir>/dynos/<id>/` (`records.py`).

- A slug is unpacked once (checked against its checksum) into `<data dir>/dyno-slugs/<checksum>/`,
  Berth's and never bound into a sandbox; each dyno gets a private, writable copy of it as /app
  (bubblewrap 0.8 has no overlay options, and a copy gives Heroku's semantics: a fresh, writable
  /app the dyno owns, wiped with it). Unpacked slugs no dyno uses are swept.
- The backend keeps no state in memory: any instance reads the records, so a new one adopts the
  running dynos (their keepers, known by pid *and* start time) and marks those whose keeper is gone
  as crashed, removing what they left (cgroups). A dyno dies with its keeper (bwrap's
  --die-with-parent), so no orphan survives.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from berth.platform.dynos.backend import (STOP_GRACE, DuplicateDyno, DynoError, DynoSpec, DynoStatus,
                                          OutputLine, UnknownDyno)
from berth.platform.dynos.output import MAX_BACKLOG, ROTATE_BYTES, Follower
from berth.platform.dynos.records import process_start_time, read_json, same_process, write_json
from berth.platform.slug_store import SlugError, SlugStore, unpack_slug
from berth.platform.slugs import UnpackLimits
from berth.supervise.locks import file_lock
from berth.supervise.ports import free_loopback_port
from berth.supervise.readiness import wait_until
from berth.supervise.stack import require_stack

__all__ = ["LocalBackend"]

HOST = "127.0.0.1"
# The keepers' spawner (spawner.py) imports only the standard library and Berth's own modules
# (tests/dynos/test_keeper_imports.py keeps that true), so it runs without `site` (-S).
SPAWNER_COMMAND = (sys.executable, "-S", "-m", "berth.platform.dynos.spawner")
BERTH_SOURCE = str(Path(__file__).resolve().parents[3])  # the directory holding the `berth` package
CONSUMER_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")  # names a file in the dyno's directory
LIVE = ("starting", "up")


class LocalBackend:
    # Its dynos run on this machine only: with several runners, one that does not own an app stops
    # that app's dynos here (the owner runs them on its own machine).
    machine_local = True

    def __init__(self, data_dir: Path, store: SlugStore, *, stack: Path | None = None,
                 require_memory_limit: bool = True, limits: UnpackLimits = UnpackLimits(),
                 output_rotate_bytes: int = ROTATE_BYTES) -> None:
        self.root = data_dir / "dynos"
        self.slugs = data_dir / "dyno-slugs"
        for directory in (data_dir, self.root, self.slugs):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store, self._stack, self.limits = store, stack, limits
        self.require_memory_limit = require_memory_limit
        self.output_rotate_bytes = output_rotate_bytes
        self._spawner = KeeperSpawner(self.root / "spawner.log")
        with self._lock():
            self._adopt()

    # -- the interface -------------------------------------------------------------------------------

    def start(self, spec: DynoSpec) -> DynoStatus:
        stack = self._stack or require_stack()
        # Under the lock only what must be: the duplicate check and the record that claims the name.
        # Copying the slug and spawning the keeper run outside it, so that starts run side by side.
        with self._lock():
            for status in self.list(spec.app_id):
                # Two releases of one name may overlap (a rolling deploy); one release's, never.
                if status.name == spec.name and status.state in LIVE and status.release_version == spec.release_version:
                    raise DuplicateDyno(f"{spec.name} of this release is already running (dyno {status.id}): "
                                        "stop it first")
            dyno_id = str(uuid.uuid4())
            directory = self.root / dyno_id
            directory.mkdir(mode=0o700)
            meta = {"id": dyno_id, "app_id": spec.app_id, "name": spec.name, "command": spec.command,
                    "slug": spec.slug_checksum, "stack": str(stack), "port": free_loopback_port() if spec.web else None,
                    "memory": spec.size.memory, "memory_kill": spec.size.memory_kill,
                    "processes": spec.size.processes, "grace": STOP_GRACE, "boot_timeout": spec.boot_timeout,
                    "output_rotate_bytes": self.output_rotate_bytes, "release": spec.release_version,
                    "require_memory_limit": self.require_memory_limit, "started_at": time.time(),
                    "cgroup_name": f"dyno-{dyno_id[:18]}",
                    # Until its keeper runs, the dyno is this process's: another backend's adoption
                    # leaves it alone while this process lives.
                    "starter_pid": os.getpid(), "starter_start": process_start_time(os.getpid())}
            write_json(directory / "meta.json", meta)  # the slug is in use from here: sweep keeps it
            try:
                shared = self._unpacked(spec.slug_checksum)
            except (SlugError, OSError) as exc:
                shutil.rmtree(directory, ignore_errors=True)
                raise DynoError(f"cannot prepare the slug {spec.slug_checksum} for {spec.name}: {exc}") from exc
        try:
            shutil.copytree(shared, directory / "app", symlinks=True)
            write_json(directory / "env.json", dict(spec.env))
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise DynoError(f"cannot prepare the slug {spec.slug_checksum} for {spec.name}: {exc}") from exc
        try:
            keeper_pid = self._spawner.spawn(directory)
        except DynoError:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        meta.update(keeper_pid=keeper_pid, keeper_start=process_start_time(keeper_pid))
        write_json(directory / "meta.json", meta)
        return self._status(directory)

    def stop(self, dyno_id: str, grace: float = STOP_GRACE) -> DynoStatus:
        directory = self._directory(dyno_id)
        # A dyno still being started has no keeper yet; its start is moments from spawning one.
        wait_until(lambda: "keeper_pid" in (read_json(directory / "meta.json") or {})
                   or self._status(directory).state not in LIVE, 30, interval=0.02)
        meta = read_json(directory / "meta.json") or {}
        if self._status(directory).state in LIVE:
            if grace != meta.get("grace"):
                meta["grace"] = grace  # the keeper reads it when told to stop
                write_json(directory / "meta.json", meta)
            if same_process(meta.get("keeper_pid"), meta.get("keeper_start")):
                os.kill(meta["keeper_pid"], signal.SIGTERM)
            deadline = time.monotonic() + grace + 15
            while self._status(directory).state in LIVE and time.monotonic() < deadline:
                time.sleep(0.05)
        return self._status(directory)

    def remove(self, dyno_id: str) -> None:
        directory = self._directory(dyno_id)
        if self._status(directory).state in LIVE:
            raise DynoError(f"dyno {dyno_id} is still running: stop it before removing it")
        shutil.rmtree(directory)
        self.sweep()

    def list(self, app_id: str | None = None) -> list[DynoStatus]:
        found = []
        for directory in sorted(self._dyno_dirs()):
            meta = read_json(directory / "meta.json")
            if meta and (app_id is None or meta["app_id"] == app_id):
                found.append(self._status(directory))
        return found

    def status(self, dyno_id: str) -> DynoStatus:
        return self._status(self._directory(dyno_id))

    def follow(self, dyno_id: str, on_line: Callable[[OutputLine], None], *, from_start: bool = True,
               position: str | None = None, buffer_lines: int = 10_000, max_backlog: int = MAX_BACKLOG) -> Follower:
        directory = self._directory(dyno_id)
        name = (read_json(directory / "meta.json") or {}).get("name", "?")
        return Follower(directory / "output.log", name, on_line, from_start=from_start, position=position,
                        buffer_lines=buffer_lines, max_backlog=max_backlog, finished=lambda: self._ended(directory))

    def save_position(self, dyno_id: str, consumer: str, position: str) -> None:
        write_json(self._position_file(dyno_id, consumer), {"position": position})

    def saved_position(self, dyno_id: str, consumer: str) -> str | None:
        saved = read_json(self._position_file(dyno_id, consumer)) or {}
        return saved.get("position") if isinstance(saved.get("position"), str) else None

    def sweep(self) -> None:
        """Remove unpacked slugs that no live dyno was started from."""
        with self._lock():
            used = {s_meta.get("slug") for s_meta in (read_json(d / "meta.json") for d in self._dyno_dirs()) if s_meta}
            for unpacked in self.slugs.iterdir():
                if unpacked.name not in used:
                    shutil.rmtree(unpacked, ignore_errors=True)

    # -- behind it -----------------------------------------------------------------------------------

    def _status(self, directory: Path) -> DynoStatus:
        meta = read_json(directory / "meta.json") or {}
        state = read_json(directory / "state.json") or {}
        current = state.get("state", "starting")
        if current in LIVE and not self._keeper_alive(meta):
            current = "crashed"  # the keeper (and with it the dyno) is gone; _adopt records it
        port = meta.get("port")
        return DynoStatus(id=meta.get("id", directory.name), app_id=meta.get("app_id", ""),
                          name=meta.get("name", ""), state=current, exit_status=state.get("exit_status"),
                          address=f"{HOST}:{port}" if port else None, started_at=meta.get("started_at", 0.0),
                          release_version=meta.get("release"))

    def _ended(self, directory: Path) -> bool:
        # Removed (its records gone, the files a follower holds open still readable) is ended too.
        return not (directory / "meta.json").is_file() or self._status(directory).state not in LIVE

    @staticmethod
    def _keeper_alive(meta: dict) -> bool:
        if "keeper_pid" not in meta:  # being started: alive while the process starting it is
            return same_process(meta.get("starter_pid"), meta.get("starter_start"))
        return same_process(meta["keeper_pid"], meta["keeper_start"])

    def _adopt(self) -> None:
        """Keep the dynos whose keeper runs; record the others as crashed and remove their leftovers."""
        for directory in self._dyno_dirs():
            meta = read_json(directory / "meta.json")
            if meta is None:
                shutil.rmtree(directory, ignore_errors=True)  # a start interrupted before its record
                continue
            state = read_json(directory / "state.json") or {}
            if state.get("state", "starting") in LIVE and not self._keeper_alive(meta):
                for cgroup in state.get("cgroups", []):
                    _remove_cgroup(Path(cgroup))
                (directory / "env.json").unlink(missing_ok=True)
                state.update(state="crashed", exit_status=None)
                write_json(directory / "state.json", state)

    def _unpacked(self, checksum: str) -> Path:
        target = self.slugs / checksum
        if not target.is_dir():
            scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=self.slugs))
            try:
                unpack_slug(self.store, checksum, scratch / "app", self.limits, links_anywhere=True)
                os.replace(scratch / "app", target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return target

    def _directory(self, dyno_id: str) -> Path:
        try:
            uuid.UUID(dyno_id)
        except ValueError:
            raise UnknownDyno(f"no dyno {dyno_id!r}") from None
        directory = self.root / dyno_id
        if not (directory / "meta.json").is_file():
            raise UnknownDyno(f"no dyno {dyno_id!r}")
        return directory

    def _position_file(self, dyno_id: str, consumer: str) -> Path:
        if not CONSUMER_RE.match(consumer):
            raise DynoError(f"invalid output consumer {consumer!r}: use lowercase letters, digits and dashes")
        return self._directory(dyno_id) / f"position-{consumer}.json"

    def _dyno_dirs(self) -> list[Path]:
        return [entry for entry in self.root.iterdir() if entry.is_dir() and not entry.is_symlink()]

    def _lock(self):
        return file_lock(self.root.parent / "dynos.lock")


class KeeperSpawner:
    """This backend's spawner process (spawner.py), started on the first start and again if it died:
    keepers are forked from it rather than started as interpreters of their own."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def spawn(self, directory: Path) -> int:
        with self._lock:
            for _attempt in range(2):  # a spawner that died meanwhile is replaced once
                process = self._running()
                try:
                    assert process.stdin is not None and process.stdout is not None
                    process.stdin.write(f"{directory}\n".encode())
                    process.stdin.flush()
                    answer = process.stdout.readline().decode().strip()
                except OSError:
                    answer = ""
                if answer.isdigit():
                    return int(answer)
                if answer.startswith("error "):
                    raise DynoError(f"the dyno's keeper could not be started: {answer[6:]}")
                self._end(process)
            raise DynoError(f"the keepers' spawner does not answer; see {self.log}")

    def _running(self) -> "subprocess.Popen[bytes]":
        if self._process is None or self._process.poll() is not None:
            with open(self.log, "ab") as log:
                self._process = subprocess.Popen(
                    SPAWNER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                    start_new_session=True, close_fds=True, env=_keeper_environment())
        return self._process

    def _end(self, process: "subprocess.Popen[bytes]") -> None:
        process.kill()
        process.wait()
        self._process = None


def _keeper_environment() -> dict[str, str]:
    """The keepers are Berth's: they get Berth's environment (the sandbox passes on only the dyno's),
    with Berth's source on the path, since the spawner runs without `site` (see SPAWNER_COMMAND)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (BERTH_SOURCE, env.get("PYTHONPATH"))))
    return env


def _remove_cgroup(path: Path) -> None:
    from berth.supervise.cgroups import MemoryCgroup, find_memory_hierarchy
    hierarchy = find_memory_hierarchy()
    if hierarchy is None or not path.is_dir():
        return
    try:
        MemoryCgroup(hierarchy, path, 0).remove()
    except OSError:
        pass
