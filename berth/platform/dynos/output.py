"""A local dyno's output file: its keeper writes it (`OutputLog`), followers tail it (`Follower`).

The keeper appends every line to `output.log` as it comes, so the dyno never waits on a reader, one
JSON record a line numbered from 1 (`{"n": 7, "t": time, "s": "app"|"heroku", "l": text}`). Past
`rotate_bytes` the file becomes `output.log.1` (the one before it is dropped) and a new `output.log`
begins, so a chatty dyno's disk use stays under two files.

A follower tails those files through a bounded queue to a callback on a thread of its own. The file
is the buffer: a burst is read at the callback's pace. It holds the file it reads open, so a rotation
under it loses nothing: it reads that file to its end and then moves to the next one. The line
numbers make the rest exact: a line numbered below the next expected one was handed over already
(never again), and a jump in the numbers is lines that are gone, reported as Logplex's notice
`Error L10 (output buffer overflow): N messages dropped since <time>.` That happens when a callback
stays slower than the dyno (past `max_backlog` bytes behind, the follower skips ahead rather than
hold anything up) or when files were rotated away before they were read.

Every handed-over line carries its `position`, `<next line number>:<file>:<offset>` (a file is named
by the number of its first line, which no other file shares): following again from it continues with
the next line; the file and offset only save reading from the oldest line kept.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import BinaryIO, Callable

from berth.platform.dynos.backend import OutputLine

__all__ = ["OutputLog", "Follower", "POLL_EVERY", "MAX_BACKLOG", "ROTATE_BYTES", "rotated_path"]

log = logging.getLogger(__name__)
POLL_EVERY = 0.05  # seconds between looks at a quiet file
MAX_BACKLOG = 4 * 1024 * 1024  # bytes a follower may lag behind its dyno before lines are dropped
ROTATE_BYTES = 16 * 1024 * 1024  # output.log's size at which it becomes output.log.1
READ_BYTES = 1 << 16
BATCH_ESTIMATE = 500  # lines in one read of a chatty dyno's file
_FIRST_NUMBER = re.compile(rb'^\{"n": (\d+),')  # how OutputLog's records begin


def rotated_path(path: Path) -> Path:
    return path.with_name(path.name + ".1")


class OutputLog:
    """The keeper's writer: numbered records, one write each (a reader never sees half a line that
    is not being written right now), rotated past `rotate_bytes`. Safe across threads."""

    def __init__(self, path: Path, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.path, self.previous, self.rotate_bytes = path, rotated_path(path), rotate_bytes
        self._lock = threading.Lock()
        self._descriptor = self._open()
        self._size = os.fstat(self._descriptor).st_size
        self._number = 0

    def write(self, source: str, text: str) -> None:
        with self._lock:
            self._number += 1
            # ensure_ascii (json's default): the record's length in characters is its length in bytes.
            record = json.dumps({"n": self._number, "t": time.time(), "s": source, "l": text}) + "\n"
            data = record.encode("ascii")
            while data:
                data = data[os.write(self._descriptor, data):]
            self._size += len(record)
            if self._size >= self.rotate_bytes:
                self._rotate()

    def close(self) -> None:
        with self._lock:
            os.close(self._descriptor)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    def _rotate(self) -> None:
        # Every write to the old file is done before it is renamed: a follower that sees the rename
        # and reads the old file to its end has all of it.
        os.close(self._descriptor)
        os.replace(self.path, self.previous)
        self._descriptor, self._size = self._open(), 0


def parse_position(position: str) -> tuple[int, int, int] | None:
    """`<next line number>:<file>:<offset>` as numbers, or None when it is not one."""
    try:
        number, file_number, offset = (int(part) for part in position.split(":"))
    except (ValueError, AttributeError):
        return None
    return (number, file_number, offset) if number >= 1 and file_number >= 1 and offset >= 0 else None


def _file_number(handle: BinaryIO) -> int | None:
    """The number of a file's first line (None while it is empty)."""
    found = _FIRST_NUMBER.match(os.pread(handle.fileno(), 32, 0))
    return int(found.group(1)) if found else None


class Follower:
    def __init__(self, path: Path, dyno: str, on_line: Callable[[OutputLine], None], *, from_start: bool,
                 buffer_lines: int, finished: Callable[[], bool], max_backlog: int = MAX_BACKLOG,
                 position: str | None = None) -> None:
        self.path, self.previous = path, rotated_path(path)
        self.dyno, self.on_line, self.finished = dyno, on_line, finished
        # Lines go over in batches (one per read), a queue operation per batch rather than per line;
        # the bound is in lines, roughly (a read of READ_BYTES holds up to ~BATCH_ESTIMATE of them).
        self.lines: "queue.Queue[list[OutputLine] | None]" = queue.Queue(maxsize=max(1, buffer_lines // BATCH_ESTIMATE))
        self.max_backlog = max_backlog
        self.dropped = 0  # in all
        self._closed = threading.Event()
        self._handle: BinaryIO | None = None  # the file being read, held open across its rotation
        self._inode = -1  # its inode: while it is held open, no other file can have it
        self._file: int | None = None  # the number of its first line
        self._offset = 0  # where the next read starts
        self._consumed = 0  # where the unfinished line (if any) starts: the position after the last line
        self._partial_skipped = False  # a skip ended inside a line: drop the rest of it
        self._skipped_at: float | None = None  # when lines were last skipped, for the L10 notice
        self._next: int | None = None  # the number of the next line to hand over (None: the first seen)
        # From the start, every line of the oldest file is owed: a skip before the first line was
        # handed over must count from that file's first line, not from the first line it lands on.
        self._owes_all = from_start and position is None
        self._start(position, from_start)
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"dyno-output-{dyno}")
        self._deliverer = threading.Thread(target=self._deliver, daemon=True, name=f"dyno-deliver-{dyno}")
        self._reader.start()
        self._deliverer.start()

    def close(self) -> None:
        self._closed.set()
        self._reader.join(timeout=5)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the dyno has ended and every line was handed over (True) or `timeout` passed."""
        self._deliverer.join(timeout)
        return not self._deliverer.is_alive()

    # -- where to begin ------------------------------------------------------------------------------

    def _start(self, position: str | None, from_start: bool) -> None:
        parsed = parse_position(position) if position else None
        if parsed is not None:
            self._next, file_number, offset = parsed
            for candidate in (self.previous, self.path):
                if self._open(candidate, expect_file=file_number):
                    assert self._handle is not None
                    offset = min(offset, os.fstat(self._handle.fileno()).st_size)
                    self._partial_skipped = offset > 0 and os.pread(self._handle.fileno(), 1, offset - 1) != b"\n"
                    self._seek(offset)
                    return
            # That file is gone: the oldest kept one, where the numbers tell what was lost.
            self._open(self.previous) or self._open(self.path)
        elif from_start:
            self._open(self.previous) or self._open(self.path)
        elif self._open(self.path):
            end = os.fstat(self._handle.fileno()).st_size
            self._seek(end)

    def _open(self, path: Path, expect_file: int | None = None) -> bool:
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            return False
        file_number = _file_number(handle)
        if expect_file is not None and file_number != expect_file:
            handle.close()
            return False
        if self._handle is not None:
            self._handle.close()
        self._handle, self._inode, self._file = handle, os.fstat(handle.fileno()).st_ino, file_number
        self._seek(0)
        return True

    def _seek(self, offset: int) -> None:
        assert self._handle is not None
        self._handle.seek(offset)
        self._offset = self._consumed = offset

    # -- reading: never blocks on the callback ------------------------------------------------------

    def _read(self) -> None:
        pending = b""
        try:
            while True:
                done = self.finished()  # looked at before reading, so no line written before the end is missed
                chunk, moved = self._read_some()
                if moved:
                    pending = b""  # whatever was unfinished in the old file never will be
                pending += chunk
                *complete, pending = pending.split(b"\n")
                batch: list[OutputLine] = []
                for raw in complete:
                    self._consumed += len(raw) + 1
                    if self._partial_skipped:
                        self._partial_skipped = False
                        continue
                    self._hand_over(raw, batch)
                if batch and not self._put(batch):
                    break
                if self._closed.is_set() or (done and not chunk and not moved):
                    break
                if not chunk and not moved:
                    time.sleep(POLL_EVERY)
        finally:
            if self._handle is not None:
                self._handle.close()
            self.lines.put(None)

    def _read_some(self) -> tuple[bytes, bool]:
        """The next bytes to parse, and whether the reading moved to another file (or place) first."""
        if self._handle is None:
            return b"", (self._open(self.previous) or self._open(self.path))
        moved = False
        if self._backlog() > self.max_backlog:
            self._skip()
            moved = True
        chunk = self._handle.read(READ_BYTES)
        if not chunk and (newer := self._newer_file()) is not None:
            chunk = self._handle.read(READ_BYTES)  # written before the rotation the check saw
            if not chunk:
                self._open(newer)
                chunk, moved = self._handle.read(READ_BYTES), True
        self._offset += len(chunk)
        return chunk, moved

    def _newer_file(self) -> Path | None:
        """The file written after the one being read, once that one has been rotated away."""
        current, previous = _inode(self.path), _inode(self.previous)
        if current == self._inode:
            return None
        if previous is not None and previous != self._inode:
            return self.previous  # rotated more than once: the next one is the rotated file
        return self.path if current is not None else None

    def _backlog(self) -> int:
        assert self._handle is not None
        behind = os.fstat(self._handle.fileno()).st_size - self._offset
        newer = self._newer_file()
        if newer is not None:
            behind += _size(newer) + (_size(self.path) if newer == self.previous else 0)
        return behind

    def _skip(self) -> None:
        """Jump to half the backlog behind the end of the newest file; the numbers of the lines read
        next tell how many were jumped over."""
        if self._next is None and self._owes_all and self._handle is not None:
            self._next = _file_number(self._handle)  # none handed over yet: all of this file is owed
        if _inode(self.path) != self._inode:
            self._open(self.path)
        assert self._handle is not None
        size = os.fstat(self._handle.fileno()).st_size
        target = max(self._offset, size - self.max_backlog // 2)
        if target > 0:
            self._handle.seek(target - 1)
            self._partial_skipped = self._handle.read(1) != b"\n"
        self._seek(target)
        self._skipped_at = self._skipped_at or time.time()

    def _hand_over(self, raw: bytes, batch: list[OutputLine]) -> None:
        line, number = self._parse(raw)
        if number is not None:
            if self._next is not None and number < self._next:
                return  # handed over before (a position behind the file, a reused read)
            if self._next is not None and number > self._next:
                batch.append(self._drops_notice(number - self._next))
            self._next = number + 1
        batch.append(line)

    def _parse(self, raw: bytes) -> tuple[OutputLine, int | None]:
        try:
            record = json.loads(raw)
            number = int(record["n"]) if "n" in record else None
            if self._file is None and self._handle is not None:
                self._file = _file_number(self._handle)  # opened while still empty
            position = f"{number + 1}:{self._file}:{self._consumed}" if number is not None else None
            return OutputLine(float(record["t"]), str(record["s"]), self.dyno, str(record["l"]), position), number
        except (ValueError, KeyError, TypeError):
            return OutputLine(time.time(), "app", self.dyno, raw.decode("utf-8", "replace")), None

    def _put(self, batch: list[OutputLine]) -> bool:
        """Queue lines, waiting for room (the file holds the rest); False once closed."""
        while not self._closed.is_set():
            try:
                self.lines.put(batch, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _drops_notice(self, count: int) -> OutputLine:
        first, self._skipped_at = self._skipped_at or time.time(), None
        self.dropped += count
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(first))
        return OutputLine(time.time(), "heroku", self.dyno,
                          f"Error L10 (output buffer overflow): {count} messages dropped since {stamp}.")

    # -- delivering ------------------------------------------------------------------------------------

    def _deliver(self) -> None:
        while (batch := self.lines.get()) is not None:
            for line in batch:
                try:
                    self.on_line(line)
                except Exception:  # a failing consumer must not end the stream of the others' lines
                    log.exception("dyno %s: the output callback failed", self.dyno)


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
