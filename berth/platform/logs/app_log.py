"""A dyno's output into the app's log stream (source `app`), in small batches: one transaction per
line would make a chatty command slow, and a line waits at most FLUSH_SECONDS, even when the
command falls silent after it (a timer flushes what waits)."""
from __future__ import annotations

import logging
import threading
import time

from berth.db import Database, utcnow
from berth.platform.logs import store

log = logging.getLogger(__name__)
FLUSH_LINES = 50
FLUSH_SECONDS = 0.5


class AppLog:
    def __init__(self, database: Database, app_id: str, process: str) -> None:
        self.database, self.app_id, self.process = database, app_id, process
        self._pending: list[store.Entry] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._timer: threading.Timer | None = None

    def line(self, message: str, source: str = "app") -> None:
        with self._lock:
            self._pending.append(store.Entry(source, self.process, message, utcnow()))
            due = len(self._pending) >= FLUSH_LINES or time.monotonic() - self._last_flush >= FLUSH_SECONDS
            if not due and self._timer is None:
                self._timer = threading.Timer(FLUSH_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            entries, self._pending = self._pending, []
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
