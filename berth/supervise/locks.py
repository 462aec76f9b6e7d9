"""Exclusive file locks (`flock`) that serialise work on one local server (its start, stop,
removal, the choice of its port) across threads and processes: web, worker and backends
processes may all ask for the same server at once."""
from __future__ import annotations

import contextlib
import fcntl
import threading
from pathlib import Path
from typing import Iterator

__all__ = ["file_lock"]

_held = threading.local()


@contextlib.contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive `flock` on `path` (made, with its directory, if missing). Re-entrant within
    one thread: a nested flock on a new descriptor of the same file would wait for ourselves.
    `wait=False` raises BlockingIOError at once when another thread or process holds it."""
    held: dict[str, int] = _held.__dict__.setdefault("locks", {})
    key = str(path)
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        held[key] = 1
        try:
            yield
        finally:
            held.pop(key, None)
            fcntl.flock(handle, fcntl.LOCK_UN)
