"""Following a local dyno's output: its keeper appends every line to `output.log` as it comes, so the
dyno never waits on a reader; a follower tails that file into a bounded queue and hands the lines to
a callback on a thread of its own. A callback slower than the dyno loses lines, never stalls
anything: once the queue is full, lines are counted and dropped, and Logplex's notice
`Error L10 (output buffer overflow): N messages dropped since <time>` takes their place.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Callable

from berth.platform.dynos.backend import OutputLine

__all__ = ["Follower", "POLL_EVERY"]

log = logging.getLogger(__name__)
POLL_EVERY = 0.05  # seconds between looks at a quiet file


class Follower:
    def __init__(self, path: Path, dyno: str, on_line: Callable[[OutputLine], None], *, from_start: bool,
                 buffer_lines: int, finished: Callable[[], bool]) -> None:
        self.path, self.dyno, self.on_line, self.finished = path, dyno, on_line, finished
        self.lines: "queue.Queue[OutputLine | None]" = queue.Queue(maxsize=buffer_lines)
        self.dropped = 0  # in all
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
                    handle.seek(self._offset)
                    chunk = handle.read(1 << 20)
            except FileNotFoundError:
                chunk = b""
            self._offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                self._offer(self._parse(raw))
            if self._closed.is_set() or (done and not chunk):
                break
            if not chunk:
                time.sleep(POLL_EVERY)
        self._report_drops(blocking=True)
        self.lines.put(None)

    def _parse(self, raw: bytes) -> OutputLine:
        try:
            record = json.loads(raw)
            return OutputLine(float(record["t"]), str(record["s"]), self.dyno, str(record["l"]))
        except (ValueError, KeyError, TypeError):
            return OutputLine(time.time(), "app", self.dyno, raw.decode("utf-8", "replace"))

    def _offer(self, line: OutputLine) -> None:
        self._report_drops(blocking=False)
        if self._dropped_since is None:
            try:
                self.lines.put_nowait(line)
                return
            except queue.Full:
                pass
        count, first = self._dropped_since or (0, time.time())
        self._dropped_since = (count + 1, first)
        self.dropped += 1

    def _report_drops(self, *, blocking: bool) -> None:
        if self._dropped_since is None:
            return
        count, first = self._dropped_since
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(first))
        notice = OutputLine(time.time(), "heroku", self.dyno,
                            f"Error L10 (output buffer overflow): {count} messages dropped since {stamp}.")
        try:
            self.lines.put(notice, block=blocking, timeout=5 if blocking else None)
            self._dropped_since = None
        except queue.Full:
            pass

    # -- delivering ------------------------------------------------------------------------------------

    def _deliver(self) -> None:
        while (line := self.lines.get()) is not None:
            try:
                self.on_line(line)
            except Exception:  # a failing consumer must not end the stream of the others' lines
                log.exception("dyno %s: the output callback failed", self.dyno)
