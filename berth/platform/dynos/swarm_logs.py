"""A Swarm service's output into its app's log stream: `app[web.N]` lines, N the slot of the task
that wrote each one, with the time Docker stamped on it.

One thread per service follows the manager's log stream of the service (every node's tasks). The
stream ends when the manager drops it (a quiet spell past the client's timeout, a node going away):
the follower asks again from the last time it forwarded, skipping what it already had, so a line is
neither lost nor repeated while the runner runs. (A runner restart starts from its own start: what a
service wrote while no runner ran is not forwarded.)
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from berth.db import Database
from berth.platform.dynos.backend import DynoError
from berth.platform.dynos.swarm import SwarmBackend, _time
from berth.platform.logs.app_log import AppLog

__all__ = ["ServiceOutput", "parse_frame"]

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0
TASK_DETAIL = "com.docker.swarm.task.id="


def parse_frame(frame: bytes) -> tuple[str, str, str] | None:
    """`<time> <details> <text>` → (time, task id, text); None for a frame not of that form."""
    text = frame.decode("utf-8", "replace").rstrip("\n")
    stamp, _, rest = text.partition(" ")
    details, _, message = rest.partition(" ")
    task = next((part[len(TASK_DETAIL):] for part in details.split(",") if part.startswith(TASK_DETAIL)), None)
    if not stamp or task is None:
        return None
    return stamp, task, message.rstrip("\r")


class ServiceOutput:
    def __init__(self, database: Database, backend: SwarmBackend, service_id: str, app_id: str,
                 dyno_of: Callable[[str], str | None], *, since: float, data_dir: Path | None = None) -> None:
        """`dyno_of`: task id → its dyno name (`web.3`), None for a task that is gone."""
        self.database, self.backend, self.service_id, self.app_id = database, backend, service_id, app_id
        self.dyno_of, self.data_dir = dyno_of, data_dir
        self._since = since
        self._last_time = since  # of the newest line forwarded, and the lines forwarded with that time
        self._at_last: set[str] = set()
        self._logs: dict[str, AppLog] = {}
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"swarm-logs-{service_id[:12]}")
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        for app_log in list(self._logs.values()):
            app_log.close()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                for frame in self.backend.logs(self.service_id, self._last_time):
                    if self._closed.is_set():
                        return
                    self._forward(frame)
            except (DynoError, OSError, ValueError) as exc:
                if self._closed.is_set():
                    return
                log.debug("the log stream of service %s ended (%s); following again", self.service_id, exc)
            except Exception:  # a broken frame or a database away: the stream is asked for again
                log.exception("following the output of service %s failed; following again", self.service_id)
            for app_log in list(self._logs.values()):
                app_log.flush()
            self._closed.wait(RECONNECT_SECONDS)

    def _forward(self, frame: bytes) -> None:
        parsed = parse_frame(frame)
        if parsed is None:
            return
        stamp, task, text = parsed
        when = _time(stamp)
        # Asked again from the last time forwarded: what is older, or a line of that time already
        # forwarded, came before.
        key = f"{task} {text}"
        if when < self._last_time or (when == self._last_time and key in self._at_last):
            return
        if when > self._last_time:
            self._last_time, self._at_last = when, set()
        self._at_last.add(key)
        dyno = self.dyno_of(task)
        if dyno is None:
            return
        app_log = self._logs.get(dyno)
        if app_log is None:
            app_log = self._logs[dyno] = AppLog(self.database, self.app_id, dyno, data_dir=self.data_dir,
                                                flush_lines=500, flush_seconds=0.05)
        app_log.line(text, source="app", logged_at=datetime.fromtimestamp(when or time.time(), timezone.utc))
