"""Memory cgroups for sandboxed processes: cgroup v2 where its memory controller is available, else
the v1 memory hierarchy (Debian hosts in "hybrid" mode mount v2 without controllers at
/sys/fs/cgroup/unified and v1 memory at /sys/fs/cgroup/memory).

The supervisor makes the cgroup and sets its limit before exec; the child joins it itself between fork
and exec (see `join_before_exec`), so not one instruction of the sandboxed program runs unlimited.
Every cgroup lives under one `berth/` parent at the top of the hierarchy, never under the cgroup
Berth itself runs in (cgroup v2 forbids processes in a cgroup whose children take controllers).
"""
from __future__ import annotations

import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["CgroupUnavailable", "MemoryCgroup", "memory_cgroup", "find_memory_hierarchy", "find_hierarchy",
           "pids_cgroup"]

PARENT = "berth"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MOUNTINFO = Path("/proc/self/mountinfo")


class CgroupUnavailable(RuntimeError):
    """No writable memory cgroup on this host (not root, no delegation, or no memory controller)."""


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    mount: Path


def find_memory_hierarchy(mountinfo: Path = MOUNTINFO) -> Hierarchy | None:
    """The hierarchy that carries the memory controller: v2 if its root offers `memory`, else v1's."""
    return find_hierarchy("memory", mountinfo)


def find_hierarchy(controller: str, mountinfo: Path = MOUNTINFO) -> Hierarchy | None:
    """The hierarchy that carries `controller`: v2 if its root offers it, else v1's."""
    v1 = None
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        mountpoint, fstype, options = fields[4], fields[separator + 1], fields[separator + 3]
        if fstype == "cgroup2":
            controllers = Path(mountpoint, "cgroup.controllers")
            if controllers.is_file() and controller in controllers.read_text().split():
                return Hierarchy(2, Path(mountpoint))
        elif fstype == "cgroup" and controller in options.split(",") and v1 is None:
            v1 = Hierarchy(1, Path(mountpoint))
    return v1


class MemoryCgroup:
    """One sandbox's cgroup: made with its limit set, joined before exec, emptied and removed after."""

    def __init__(self, hierarchy: Hierarchy, path: Path, limit_bytes: int) -> None:
        self.hierarchy = hierarchy
        self.path = path
        self.limit_bytes = limit_bytes

    @property
    def version(self) -> int:
        return self.hierarchy.version

    def join_before_exec(self) -> Callable[[], None]:
        """A `preexec_fn` that moves the forked child into this cgroup. The file is opened here, by
        the supervisor, so the child needs no permission of its own after it drops root; the
        function only writes to an open descriptor (safe between fork and exec)."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        self._join_fd = fd

        def join() -> None:
            os.write(fd, b"0")  # "0" = the writing process itself

        return join

    def joined(self) -> None:
        """Close the descriptor `join_before_exec` opened, once the child is started."""
        fd = getattr(self, "_join_fd", None)
        if fd is not None:
            os.close(fd)
            self._join_fd = None

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def resident(self) -> int:
        """Bytes of the processes' own memory, in RAM or swapped out (Heroku's RSS + swap): page cache
        is left out, so reading big files does not count against a dyno's quota."""
        keys = ("anon",) if self.version == 2 else ("total_rss", "total_swap")
        found = 0
        try:
            for line in (self.path / "memory.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key in keys:
                    found += int(value)
            if self.version == 2 and (self.path / "memory.swap.current").is_file():
                found += int((self.path / "memory.swap.current").read_text())
        except (FileNotFoundError, ValueError):
            pass
        return found

    def oom_kills(self) -> int:
        """How many processes the kernel killed for exceeding the limit."""
        source = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (self.path / source).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except FileNotFoundError:
            pass
        return 0

    def kill_all(self) -> None:
        """SIGKILL every process still inside (until none is left: a process may fork meanwhile)."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Remove the cgroup once its processes are gone (they leave it a moment after they die)."""
        self.joined()
        deadline = time.monotonic() + 5
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                self.kill_all()
                time.sleep(0.02)


def memory_cgroup(name: str, limit_bytes: int, hierarchy: Hierarchy | None = None) -> MemoryCgroup:
    """A new cgroup `berth/<name>` limited to `limit_bytes` of memory, swap included where the kernel
    accounts it. Raises CgroupUnavailable (with the reason) when none can be made."""
    hierarchy, path = _make("memory", name, limit_bytes, hierarchy)
    group = MemoryCgroup(hierarchy, path, limit_bytes)
    try:
        if hierarchy.version == 2:
            (path / "memory.max").write_text(str(limit_bytes))
            _write_if_present(path / "memory.swap.max", "0")
        else:
            (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            # Without this the limit only bounds RAM and a hog would swap instead of being stopped.
            _write_if_present(path / "memory.memsw.limit_in_bytes", str(limit_bytes))
    except OSError as exc:
        group.remove()
        raise CgroupUnavailable(f"cannot set the memory limit in {path}: {exc.strerror}") from exc
    return group


def pids_cgroup(name: str, limit: int, hierarchy: Hierarchy | None = None) -> MemoryCgroup:
    """A new cgroup `berth/<name>` in the pids hierarchy allowing at most `limit` processes and
    threads, so that a fork bomb exhausts only its own sandbox. On cgroup v2 it is the same directory
    as the memory cgroup of that name (one unified tree); on v1 a sibling in the pids hierarchy.
    The returned object joins, lists and removes like a memory cgroup; its `limit_bytes` is unused."""
    hierarchy, path = _make("pids", name, limit, hierarchy)
    group = MemoryCgroup(hierarchy, path, 0)
    try:
        (path / "pids.max").write_text(str(limit))
    except OSError as exc:
        group.remove()
        raise CgroupUnavailable(f"cannot limit processes in {path}: {exc.strerror}") from exc
    return group


def _make(controller: str, name: str, limit: int, hierarchy: Hierarchy | None) -> tuple[Hierarchy, Path]:
    """The new directory `berth/<name>` in the hierarchy carrying `controller` (on cgroup v2 the
    memory and pids cgroups of one sandbox are one directory, so it may exist already)."""
    if not NAME_RE.match(name):
        raise ValueError(f"invalid cgroup name {name!r}")
    if limit <= 0:
        raise ValueError(f"the {controller} limit must be positive")
    hierarchy = hierarchy or find_hierarchy(controller)
    if hierarchy is None:
        raise CgroupUnavailable(f"no cgroup hierarchy with the {controller} controller is mounted")
    parent = hierarchy.mount / PARENT
    path = parent / name
    try:
        parent.mkdir(exist_ok=True)
        if hierarchy.version == 2:
            _enable_controller(hierarchy.mount, parent, controller)
        path.mkdir(exist_ok=hierarchy.version == 2 and controller != "memory")
    except OSError as exc:
        raise CgroupUnavailable(f"cannot create {path}: {exc.strerror}") from exc
    return hierarchy, path


def _enable_controller(mount: Path, parent: Path, controller: str) -> None:
    for directory in (mount, parent):
        control = directory / "cgroup.subtree_control"
        if controller not in control.read_text().split():
            control.write_text(f"+{controller}")


def _write_if_present(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except FileNotFoundError:
        pass
