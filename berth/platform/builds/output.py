"""A job's output: one append-only text file per job under `<data dir>/<kind>/output` (kind
`builds`, or `releases` for release phases), written by the builder as the job runs and read by
whoever follows it (an output stream URL, a git push).

A follower reads what is there, then waits for more; it stops once the job's final status is
stored and everything written before it has been read, so nothing is cut off.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterator

from berth.jobs.wakeup import PROGRESS_SIGNAL, WaiterSignaller, woken_by_signal

CHUNK = 64 * 1024
POLL_SECONDS = 0.25
# Something at least this often while a build is quiet: clients and proxies drop a silent stream.
KEEPALIVE_SECONDS = 30.0


BUILDS = "builds"


def output_dir(data_dir: Path, kind: str = BUILDS) -> Path:
    return data_dir / kind / "output"


def output_path(data_dir: Path, job_id: str, kind: str = BUILDS) -> Path:
    return output_dir(data_dir, kind) / f"{job_id}.log"


class OutputWriter:
    """Appends lines to a job's output file, each flushed at once and its followers woken (they
    read it live, not at their next poll)."""

    def __init__(self, data_dir: Path, job_id: str, kind: str = BUILDS) -> None:
        directory = output_dir(data_dir, kind)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(output_path(data_dir, job_id, kind), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8", errors="replace", buffering=1)
        self._followers = WaiterSignaller(data_dir, job_id)

    def line(self, text: str) -> None:
        self._file.write(text.rstrip("\n") + "\n")
        self._followers.signal()

    def close(self) -> None:
        self._file.close()
        self._followers.close()


def follow(data_dir: Path, job_id: str, finished: Callable[[], bool], *, kind: str = BUILDS, start: int = 0,
           keepalive: bytes | None = b"\n", deadline: float | None = None,
           poll_seconds: float = POLL_SECONDS) -> Iterator[bytes]:
    """The job's output from byte `start` as it is written, until `finished()` (the final status
    is stored) and all of it has been read. While nothing comes, `keepalive` every KEEPALIVE_SECONDS.
    The writer signals each line and the job's runner signals once its final status is committed
    (berth.jobs.wakeup), so both reach the follower at once; polling only covers a lost signal.
    `finished()` (a query) is asked on the runner's signal and at most every `poll_seconds` otherwise,
    not on every line."""
    path = output_path(data_dir, job_id, kind)
    position = start
    last_sent = time.monotonic()
    with woken_by_signal(data_dir, job_id) as pause:  # bound before the first finished(): no signal lost
        ask = True
        asked = 0.0
        while True:
            done = False
            if ask or time.monotonic() - asked >= poll_seconds:
                done, asked = finished(), time.monotonic()  # before reading: what was written before it is read below
            chunk = _read_from(path, position)
            while chunk:
                position += len(chunk)
                last_sent = time.monotonic()
                yield chunk
                chunk = _read_from(path, position)
            if done:
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            if keepalive is not None and time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield keepalive
            signals = pause(poll_seconds)
            ask = not signals or any(signal != PROGRESS_SIGNAL for signal in signals)


def _read_from(path: Path, position: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(position)
            return file.read(CHUNK)
    except FileNotFoundError:
        return b""


def remove_output(data_dir: Path, job_id: str, kind: str = BUILDS) -> None:
    output_path(data_dir, job_id, kind).unlink(missing_ok=True)
