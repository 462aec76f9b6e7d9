"""The dyno backend interface: what the runner (issue 12) drives to run an app's processes.

A backend starts a dyno from a slug, stops it, lists dynos with their state and exit status, streams
each dyno's output and says where a web dyno listens. PIDs, paths and containers stay behind it: a
dyno is known by its `id`, which survives a restart of the process holding the backend (the local
backend adopts its running dynos; a Docker Swarm backend would name its services by it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol

__all__ = ["DynoSize", "DynoSpec", "DynoStatus", "DynoBackend", "DynoError", "DuplicateDyno", "UnknownDyno",
           "OutputLine", "STANDARD_1X", "STOP_GRACE", "BOOT_TIMEOUT", "DYNO_NAME_RE", "STATES"]

STOP_GRACE = 30.0  # seconds between SIGTERM and SIGKILL (R12), runtime.md §6.3
BOOT_TIMEOUT = 60.0  # seconds a web dyno has to bind $PORT before R10, runtime.md §6.2
STATES = ("starting", "up", "crashed", "down")
DYNO_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,29}\.[0-9]{1,6}$")  # `web.1`, `run.4520`


class DynoError(RuntimeError):
    """A dyno could not be started or found; the message says why and what to do."""


class DuplicateDyno(DynoError):
    """The app already has a live dyno of that name."""


class UnknownDyno(DynoError):
    """No dyno has that id."""


@dataclass(frozen=True)
class DynoSize:
    """What a dyno may use (runtime.md §6.7): over `memory` it gets R14 lines, at `memory_kill` it is
    stopped with R15; at most `processes` processes and threads."""

    name: str
    memory: int
    memory_kill: int
    processes: int


STANDARD_1X = DynoSize("standard-1X", 512 * 1024 * 1024, 1024 * 1024 * 1024, 256)


@dataclass(frozen=True)
class DynoSpec:
    app_id: str
    name: str  # `web.1`: unique among the app's live dynos
    slug_checksum: str
    command: str  # run through bash after .profile.d and .profile
    env: Mapping[str, str] = field(default_factory=dict)  # the release's config vars
    size: DynoSize = STANDARD_1X
    web: bool = False  # gets its own $PORT and an address
    release_version: int | None = None
    boot_timeout: float = BOOT_TIMEOUT  # a web dyno not listening on $PORT by then gets R10 and crashes

    def __post_init__(self) -> None:
        if not DYNO_NAME_RE.match(self.name):
            raise DynoError(f"invalid dyno name {self.name!r}: use <type>.<number>, like web.1")
        if not self.boot_timeout > 0:
            raise DynoError(f"invalid boot timeout {self.boot_timeout!r}: give a number of seconds above 0")


@dataclass(frozen=True)
class DynoStatus:
    id: str
    app_id: str
    name: str
    state: str  # one of STATES
    exit_status: int | None  # once crashed or down; 128+N when killed by signal N
    address: str | None  # `host:port` of a web dyno
    started_at: float  # Unix time
    release_version: int | None = None


@dataclass(frozen=True)
class OutputLine:
    """A line of a dyno's log: `source` is `app` (its stdout/stderr) or `heroku` (the platform's
    notices about it: R10, R14, R15, L10, state changes). `position` (opaque, the backend's) is where
    following again continues right after this line; None on notices the follower made itself."""

    time: float
    source: str
    dyno: str
    text: str
    position: str | None = None


class DynoBackend(Protocol):
    def start(self, spec: DynoSpec) -> DynoStatus:
        """Start a dyno; raises DuplicateDyno, DynoError (slug or sandbox unusable)."""

    def stop(self, dyno_id: str, grace: float = STOP_GRACE) -> DynoStatus:
        """SIGTERM every process of the dyno, SIGKILL after `grace` (with an R12 line); wait for it."""

    def remove(self, dyno_id: str) -> None:
        """Forget a dyno that is no longer running (its files and state)."""

    def list(self, app_id: str | None = None) -> list[DynoStatus]: ...

    def status(self, dyno_id: str) -> DynoStatus: ...

    def follow(self, dyno_id: str, on_line: Callable[[OutputLine], None], *, from_start: bool = True,
               position: str | None = None) -> "Follower":
        """Hand every output line of the dyno to `on_line` (another thread) without ever blocking it:
        from the oldest line kept, or only new ones (`from_start=False`), or right after the line whose
        `position` is given. Lines the backend no longer has are reported with an L10 notice."""

    def save_position(self, dyno_id: str, consumer: str, position: str) -> None:
        """Keep `consumer`'s position in the dyno's output with the dyno's records (they go with it),
        so that a consumer made again after a restart resumes from it."""

    def saved_position(self, dyno_id: str, consumer: str) -> str | None:
        """The position `consumer` saved last, None if it never did."""


class Follower(Protocol):
    def close(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool:
        """True once the dyno has ended and every line was handed over; False if `timeout` passed."""

    @property
    def dropped(self) -> int: ...


def by_name(statuses: Iterable[DynoStatus]) -> dict[str, DynoStatus]:
    return {status.name: status for status in statuses}
