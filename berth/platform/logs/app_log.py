"""A process's output into the app's log stream, in small batches: one transaction per line would make
a chatty command slow, and a line waits at most FLUSH_SECONDS, even when the command falls silent
after it (a timer flushes what waits).

A line may carry its own time (when the process wrote it, not when it was stored) and a `mark`, an
opaque token the caller gets back through `on_written` once every line up to it is committed: where
the caller can resume without repeating lines. Batches commit one at a time, in order.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from berth.db import Database, utcnow
from berth.jobs.wakeup import WaiterSignaller
from berth.platform.logs import store

log = logging.getLogger(__name__)
FLUSH_LINES = 50
FLUSH_SECONDS = 0.5


def app_log_subject(app_id: str) -> str:
    """What tails of an app's stream wait on (berth.jobs.wakeup) and its writers signal."""
    return app_id


class AppLog:
    def __init__(self, database: Database, app_id: str, process: str, *,
                 on_written: Callable[[object], None] | None = None, data_dir: Path | None = None,
                 flush_lines: int = FLUSH_LINES, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.database, self.app_id, self.process = database, app_id, process
        self.on_written = on_written
        self.flush_lines, self.flush_seconds = flush_lines, flush_seconds
        # With the data dir, tails of the stream are woken as each batch is committed.
        self._tails = WaiterSignaller(data_dir, app_log_subject(app_id)) if data_dir is not None else None
        self._pending: list[store.Entry] = []
        self._mark: object = None  # the newest mark among the pending lines
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one batch at a time, so batches (and marks) stay in order
        self._last_flush = time.monotonic()
        self._timer: threading.Timer | None = None

    def line(self, message: str, source: str = "app", *, logged_at: datetime | None = None,
             mark: object = None) -> None:
        with self._lock:
            self._pending.append(store.Entry(source, self.process, message, logged_at or utcnow()))
            if mark is not None:
                self._mark = mark
            due = len(self._pending) >= self.flush_lines or time.monotonic() - self._last_flush >= self.flush_seconds
            if not due and self._timer is None:
                self._timer = threading.Timer(self.flush_seconds, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def close(self) -> None:
        self.flush()
        if self._tails is not None:
            self._tails.close()

    def flush(self) -> None:
        with self._flushing:
            with self._lock:
                entries, self._pending = self._pending, []
                mark, self._mark = self._mark, None
                self._last_flush = time.monotonic()
                timer, self._timer = self._timer, None
            if timer is not None and timer is not threading.current_thread():
                timer.cancel()
            if not entries:
                return
            try:
                with self.database.transaction() as session:
                    store.append(session, self.app_id, entries)
            except Exception:  # the log stream is a copy (the output file has every line): never fail the run
                log.exception("could not write %d log lines of %s", len(entries), self.process)
                return
            if self._tails is not None:
                self._tails.signal()
            if mark is not None and self.on_written is not None:
                self.on_written(mark)
