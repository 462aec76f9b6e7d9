"""Following a local dyno's output: its keeper appends every line to `output.log` as it comes, so the
dyno never waits on a reader; a follower tails that file through a bounded queue to a callback on a
thread of its own. The file is the buffer: a burst is read at the callback's pace, none of it lost.
A callback that stays slower than the dyno never stalls anything either: once the follower is more
than `max_backlog` bytes behind the file, it skips ahead, counting the lines it skipped, and Logplex's
notice `Error L10 (output buffer overflow): N messages dropped since <time>.` takes their place.
"""
from __future__ import annotations

import json
import os
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Callable

from berth.platform.dynos.backend import OutputLine

__all__ = ["Follower", "POLL_EVERY", "MAX_BACKLOG"]

log = logging.getLogger(__name__)
POLL_EVERY = 0.05  # seconds between looks at a quiet file
MAX_BACKLOG = 4 * 1024 * 1024  # bytes a follower may lag behind its dyno before lines are dropped


class Follower:
    def __init__(self, path: Path, dyno: str, on_line: Callable[[OutputLine], None], *, from_start: bool,
                 buffer_lines: int, finished: Callable[[], bool], max_backlog: int = MAX_BACKLOG) -> None:
        self.path, self.dyno, self.on_line, self.finished = path, dyno, on_line, finished
        self.lines: "queue.Queue[OutputLine | None]" = queue.Queue(maxsize=buffer_lines)
        self.max_backlog = max_backlog
        self.dropped = 0  # in all
        self._partial_skipped = False  # the skip ended inside a line: drop the rest of it
        self._dropped_since: tuple[int, float] | None = None  # (count, first drop) not yet reported
        self._closed = threading.Event()
        self._offset = 0 if from_start or not path.exists() else path.stat().st_size
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

    # -- reading: never blocks on the callback ------------------------------------------------------

    def _read(self) -> None:
        pending = b""
        while True:
            done = self.finished()  # looked at before reading, so no line written before the end is missed
            try:
                with open(self.path, "rb") as handle:
                    if os.fstat(handle.fileno()).st_size - self._offset > self.max_backlog:
                        pending = self._skip(handle, pending)
                    handle.seek(self._offset)
                    chunk = handle.read(1 << 16)
            except FileNotFoundError:
                chunk = b""
            self._offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            if complete and self._partial_skipped:
                complete, self._partial_skipped = complete[1:], False
            for raw in complete:
                if not self._put(self._parse(raw)):
                    break
            if self._closed.is_set() or (done and not chunk):
                break
            if not chunk:
                time.sleep(POLL_EVERY)
        self.lines.put(None)

    def _parse(self, raw: bytes) -> OutputLine:
        try:
            record = json.loads(raw)
            return OutputLine(float(record["t"]), str(record["s"]), self.dyno, str(record["l"]))
        except (ValueError, KeyError, TypeError):
            return OutputLine(time.time(), "app", self.dyno, raw.decode("utf-8", "replace"))

    def _skip(self, handle, pending: bytes) -> bytes:
        """Jump to half the backlog behind the end, counting the lines jumped over as dropped."""
        target = os.fstat(handle.fileno()).st_size - self.max_backlog // 2
        handle.seek(self._offset)
        skipped, last = 0, b"\n"
        while self._offset < target:
            chunk = handle.read(min(1 << 20, target - self._offset))
            if not chunk:
                break
            skipped += chunk.count(b"\n")
            self._offset += len(chunk)
            last = chunk
        self._partial_skipped = not last.endswith(b"\n")
        skipped += int(self._partial_skipped)  # the line the jump lands in
        if skipped:
            count, first = self._dropped_since or (0, time.time())
            self._dropped_since = (count + skipped, first)
            self.dropped += skipped
            self._report_drops()
        return b""

    def _put(self, line: OutputLine) -> bool:
        """Queue a line, waiting for room (the file holds the rest); False once closed."""
        while not self._closed.is_set():
            try:
                self.lines.put(line, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _report_drops(self) -> None:
        if self._dropped_since is None:
            return
        count, first = self._dropped_since
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(first))
        self._dropped_since = None
        self._put(OutputLine(time.time(), "heroku", self.dyno,
                             f"Error L10 (output buffer overflow): {count} messages dropped since {stamp}."))

    # -- delivering ------------------------------------------------------------------------------------

    def _deliver(self) -> None:
        while (line := self.lines.get()) is not None:
            try:
                self.on_line(line)
            except Exception:  # a failing consumer must not end the stream of the others' lines
                log.exception("dyno %s: the output callback failed", self.dyno)
