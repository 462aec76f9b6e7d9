"""The app's log buffer: append lines, keep the newest 1500, read them back filtered.

Line ids only grow, so readers page forward with `after_id`. On PostgreSQL, ids come from a
sequence when a row is inserted but become visible when its transaction commits, so two writers
could commit out of id order and a tailing reader would skip the earlier id. Appends to one app
therefore take a row lock on the app first: ids are handed out and committed in the same order.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from berth.db import utcnow
from berth.logplex import rfc5424_time, split_message
from berth.platform.logs.models import LogLine, LogSession
from berth.platform.models import App

MAX_LINES_PER_APP = 1500   # Logplex's log_history (runtime.md §8.2): what readers get at most
# Lines kept beyond those: a tail or drain a moment behind a chatty app (20,000 lines/s fill 1500 in
# 75 ms) still finds the lines it has not read...
TRIM_SLACK = 2000
# ...and trimmed only once this many more have come: one delete every few batches, not one per batch.
TRIM_EVERY = 1000
LABEL_LENGTH = 64          # width of the source and process columns


@dataclass(frozen=True)
class Entry:
    source: str                       # app | heroku | an add-on's name
    process: str                      # web.1 | router | api | ...
    message: str
    logged_at: datetime | None = None  # now, when the writer gave no time


def _clean(text: str) -> str:
    # No database keeps NUL in text (PostgreSQL refuses it); a log line is no reason to fail.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def append(session: Session, app_id: str, entries: Iterable[Entry]) -> int:
    """Adds the entries (lines over 10000 bytes split) and, once the app has more than 1500 +
    TRIM_SLACK + TRIM_EVERY lines, drops all but the newest 1500 + TRIM_SLACK (readers see the
    newest 1500 at most), in the caller's transaction. Returns how many lines were written."""
    now = utcnow()
    rows = [{"app_id": app_id, "logged_at": entry.logged_at or now,
             "source": _clean(entry.source)[:LABEL_LENGTH] or "app",
             "process": _clean(entry.process)[:LABEL_LENGTH] or "-", "message": piece}
            for entry in entries for piece in split_message(_clean(entry.message))]
    if not rows:
        return 0
    # FOR NO KEY UPDATE: serialises appends to this app without blocking inserts elsewhere
    # that reference it (those take KEY SHARE). SQLite ignores it; its writers are serial anyway.
    session.execute(select(App.id).where(App.id == app_id).with_for_update(key_share=True))
    _insert_many(session, rows)
    newest_first = select(LogLine.id).where(LogLine.app_id == app_id).order_by(LogLine.id.desc())
    if session.scalar(newest_first.offset(MAX_LINES_PER_APP + TRIM_SLACK + TRIM_EVERY).limit(1)) is not None:
        oldest_kept = session.scalar(newest_first.offset(MAX_LINES_PER_APP + TRIM_SLACK - 1).limit(1))
        session.execute(delete(LogLine).where(LogLine.app_id == app_id, LogLine.id < oldest_kept))
    session.flush()
    return len(rows)


_COLUMNS = ("app_id", "logged_at", "source", "process", "message")


def _insert_many(session: Session, rows: list[dict]) -> None:
    """The rows in one go. On PostgreSQL with COPY: a chatty dyno's lines come by the tens of
    thousands a second, and an executemany costs psycopg a pipelined statement per row (~3× the
    time). Elsewhere a Core executemany (no ORM bulk machinery per row)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(LogLine.__table__), rows)
        return
    # The column type's own conversion (naive UTC), as an INSERT would store it.
    to_database = LogLine.__table__.c.logged_at.type.bind_processor(connection.dialect) or (lambda value: value)
    driver = connection.connection.driver_connection  # the psycopg connection, inside this transaction
    statement = f"COPY {LogLine.__tablename__} ({', '.join(_COLUMNS)}) FROM STDIN"  # constants only
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row((row["app_id"], to_database(row["logged_at"]), row["source"], row["process"],
                            row["message"]))


def read(session: Session, app_id: str, *, limit: int, source: str | None = None,
         dyno: str | None = None, after_id: int | None = None) -> list[LogLine]:
    """Matching lines, oldest first: the newest `limit` of them, or with `after_id` the first
    `limit` after that id (so a follower pages forward without gaps).

    `dyno` is a process (`web.1`) or a process type (`web` matches `web.1`, `web.2`)."""
    query = select(LogLine).where(LogLine.app_id == app_id)
    if source:
        query = query.where(LogLine.source == source)
    if dyno:
        query = query.where(or_(LogLine.process == dyno,
                                LogLine.process.startswith(dyno + ".", autoescape=True)))
    if after_id is not None:
        return list(session.scalars(query.where(LogLine.id > after_id)
                                    .order_by(LogLine.id).limit(limit)))
    newest = list(session.scalars(query.order_by(LogLine.id.desc()).limit(limit)))
    return newest[::-1]


def read_on(session: Session, app_id: str, after_id: int, *, limit: int, source: str | None = None,
            dyno: str | None = None) -> tuple[list[LogLine], bool]:
    """A tail's next lines after `after_id` (a line of this app it has read), and whether lines were
    trimmed before it could read them: its line is gone yet newer ones remain. One statement, so
    the lines and the answer come from the same moment."""
    query = select(LogLine).where(LogLine.app_id == app_id, LogLine.id > after_id)
    if source:
        query = query.where(LogLine.source == source)
    if dyno:
        query = query.where(or_(LogLine.process == dyno, LogLine.process.startswith(dyno + ".", autoescape=True)))
    still_there = select(LogLine.id).where(LogLine.id == after_id).exists()
    rows = session.execute(query.add_columns(still_there.label("kept")).order_by(LogLine.id).limit(limit)).all()
    return [row[0] for row in rows], bool(rows) and not rows[0][1]


def newest_id(session: Session, app_id: str) -> int:
    """The id of the app's last line (0 when it has none): where a tail starts."""
    return session.scalar(select(func.max(LogLine.id)).where(LogLine.app_id == app_id)) or 0


def format_line(line: LogLine) -> str:
    """Heroku's display form: `2026-11-26T08:00:00.123456+00:00 app[web.1]: message`."""
    return f"{rfc5424_time(line.logged_at)} {line.source}[{line.process}]: {line.message}"


# ---- log sessions: a URL that reads (and tails) the buffer for a few minutes ------------------

SESSION_LIFETIME = timedelta(seconds=360)  # Logplex's session_expiry_s


def create_session(session: Session, app: App, *, lines: int, tail: bool, source: str | None,
                   dyno: str | None) -> LogSession:
    now = utcnow()
    # Expired sessions are useless; dropping them here keeps the table small without a sweeper.
    session.execute(delete(LogSession).where(LogSession.expires_at < now))
    log_session = LogSession(app_id=app.id, lines=lines, tail=tail, source=source, dyno=dyno,
                             created_at=now, expires_at=now + SESSION_LIFETIME)
    session.add(log_session)
    session.flush()
    return log_session


def live_session(session: Session, session_id: str) -> LogSession | None:
    """The session, unless it is unknown or expired."""
    found = session.get(LogSession, session_id)
    return found if found is not None and found.expires_at > utcnow() else None
