"""nginx's access log (one JSON object per request, see nginx_config.ACCESS_LOG_FIELDS) into
each app's log stream as Heroku's `heroku[router]` lines (runtime.md §7.4).

`RouterLogShipper` follows the file from where it last stopped, names the dyno behind each
upstream address through the routing table of the moment, and appends what one pass read in one
transaction (up to BATCH_LINES lines each), then moves its saved offset past them: under load the
router logs thousands of requests a second, and a transaction per few dozen lines cost more CPU than
nginx's proxying of them (a line is shipped again, never lost, when the process dies between). When
the file grows past `rotate_bytes` it is renamed aside, nginx is asked to reopen its log
(SIGUSR1), and the old file is read to its end before it is removed: no line is lost or doubled.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select

from berth.db import Database
from berth.platform.logs import store
from berth.platform.models import App
from berth.platform.router.pages import ERRORS
from berth.platform.router.table import AppRoute, RoutingTable

log = logging.getLogger(__name__)
ROTATE_BYTES = 64 * 1024 * 1024
BATCH_LINES = 10_000  # lines per transaction at most (a backlog is shipped in several)
_SEPARATOR = re.compile(r",|\s:\s")


def _last(value: str) -> str:
    """nginx lists one value per upstream tried ("a, b" on retries, "a : b" across an internal
    redirect such as an H12 page); the last real one is the dyno that answered or timed out.
    "-" means none."""
    if "," not in value and " : " not in value:  # nearly every line: one upstream tried
        value = value.strip()
        return "" if value == "-" else value
    values = [part.strip() for part in _SEPARATOR.split(value)]
    real = [part for part in values if part and part != "-"]
    return real[-1] if real else ""


def _ms(seconds: str) -> str:
    value = _last(seconds)
    try:
        return f"{round(float(value) * 1000)}ms"
    except ValueError:
        return ""


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_line(record: dict[str, Any], table: RoutingTable) -> str:
    """One request as Heroku's router logs it."""
    code = record.get("code", "")
    error = ERRORS.get(code)
    head = f"at={error.level} code={code} desc={_quoted(error.desc)}" if error else "at=info"
    upstream = _last(record.get("upstream", ""))
    dyno = record.get("dyno") or (table.dyno_name(record.get("app", ""), upstream) or "" if upstream else "")
    if code in ("H10", "H14", "H80"):  # answered by the router, no dyno involved
        connect = service = ""
    else:
        connect, service = _ms(record.get("connect", "")), _ms(record.get("service", ""))
    return (f"{head} method={record.get('method', '')} path={_quoted(record.get('path', ''))} "
            f"host={record.get('host', '')} request_id={record.get('request_id', '')} "
            f"fwd={_quoted(record.get('fwd', ''))} dyno={dyno} connect={connect} service={service} "
            f"status={record.get('status', '')} bytes={record.get('bytes', '')} "
            f"protocol={record.get('scheme', '')}")


class RouterLogShipper:
    def __init__(self, access_log: Path, database: Database, table: Callable[[], RoutingTable],
                 reopen: Callable[[], None], rotate_bytes: int = ROTATE_BYTES) -> None:
        self.access_log, self.database, self.table = access_log, database, table
        self.reopen, self.rotate_bytes = reopen, rotate_bytes
        self.offset_file = access_log.with_name(access_log.name + ".offset")

    def ship_once(self) -> int:
        """Ship every complete line written since the last call; returns how many."""
        aside = self.access_log.with_name(self.access_log.name + ".1")
        shipped = 0
        if aside.exists():  # a rotation not finished (this process stopped in between)
            shipped += self._ship(aside, remove_when_done=True)
        shipped += self._ship(self.access_log, remove_when_done=False)
        if self.access_log.exists() and self.access_log.stat().st_size >= self.rotate_bytes:
            os.replace(self.access_log, aside)
            self._save_offset(aside, self._offset(self.access_log))
            self._save_offset(self.access_log, 0)
            self.reopen()
        return shipped

    def serve(self, stop: threading.Event, interval: float = 0.2) -> None:
        while not stop.is_set():
            try:
                self.ship_once()
            except Exception:  # a bad round must not end the router's logging
                log.exception("shipping router log lines failed; retrying")
            stop.wait(interval)

    # -- internals -----------------------------------------------------------------------------

    def _offset(self, path: Path) -> int:
        try:
            saved = json.loads(self.offset_file.read_text())
            return int(saved.get(path.name, 0))
        except (OSError, ValueError, AttributeError):
            return 0

    def _save_offset(self, path: Path, offset: int) -> None:
        try:
            saved = json.loads(self.offset_file.read_text())
        except (OSError, ValueError):
            saved = {}
        saved[path.name] = offset
        aside = self.offset_file.with_suffix(".tmp")
        aside.write_text(json.dumps(saved))
        os.replace(aside, self.offset_file)

    def _ship(self, path: Path, *, remove_when_done: bool) -> int:
        start = self._offset(path)
        try:
            with open(path, "rb") as source:
                source.seek(start)
                data = source.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1
        if end == 0 and not remove_when_done:
            return 0
        table = self.table()
        routes = {route.app: route for route in table.apps}
        lines = data[:end].splitlines(keepends=True)
        shipped = 0
        for first in range(0, len(lines), BATCH_LINES):
            batch = lines[first:first + BATCH_LINES]
            shipped += self._append(batch, table, routes)  # a database away raises: the offset stays
            start += sum(map(len, batch))
            if not remove_when_done:
                self._save_offset(path, start)
        if remove_when_done:
            path.unlink()
            self._save_offset(path, 0)
        return shipped

    def _append(self, raw_lines: list[bytes], table: RoutingTable, routes: dict[str, AppRoute]) -> int:
        """The lines as router lines of their apps' streams, in one transaction; how many."""
        by_app: dict[str, list[store.Entry]] = {}
        for raw in raw_lines:
            try:
                record = json.loads(raw)
            except ValueError:
                log.warning("skipping an unreadable router log line")
                continue
            route = routes.get(record.get("app", ""))
            if route is None or route.app_id is None:
                continue  # unknown host, or an app gone since: nobody's log stream
            by_app.setdefault(route.app_id, []).append(
                store.Entry("heroku", "router", format_line(record, table)))
        if not by_app:
            return 0
        shipped = 0
        with self.database.transaction() as session:
            # An app destroyed since the table was made has no stream left: its lines go nowhere
            # (rather than failing the whole batch again and again).
            for app_id in session.scalars(select(App.id).where(App.id.in_(list(by_app)))):
                shipped += store.append(session, app_id, by_app[app_id])
        return shipped
