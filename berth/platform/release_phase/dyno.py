"""The release phase's one-off dyno, `release.N`, as Heroku shows it: a `one_off_dynos` row recorded
with the phase (they share N), so that the dyno API, `heroku ps`, `berth ps` and the dashboard list
it while it waits (`starting`) and runs (`up`), and a stop request (`stopping`, with who asked)
reaches the builder that runs it. The rendezvous host never touches these rows
(one_off_dynos.RELEASE_TYPE); the builder moves them: starting → up → down, or crashed."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Callable, Iterable

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from berth.db import Database, utcnow
from berth.jobs.wakeup import signal_waiters, woken_by_signal
from berth.platform import dyno_sizes, one_off_dynos
from berth.platform.models import OneOffDyno

log = logging.getLogger(__name__)
# What the builder gives a release command, shown as the dyno's size: standard-1x's memory and
# process limit, the size Heroku runs a release phase on unless the app's web dynos are larger.
SIZE = dyno_sizes.of_stored(dyno_sizes.DEFAULT_SIZE)
_NOT_ENDED = ("starting", "up", "stopping")


def record(session: Session, app_id: str, release_id: str, command: str, *, above: int, time_to_live: int) -> int:
    """Add the waiting dyno of a release phase being scheduled; its number, which the phase takes
    too (above `above`, the app's highest phase number, so that both tables' keys hold)."""
    dyno = one_off_dynos.add_numbered(session, app_id, lambda number: OneOffDyno(
        app_id=app_id, release_id=release_id, number=number, type=one_off_dynos.RELEASE_TYPE, command=command,
        env="{}", size=SIZE.key, attach=False, tty=False, time_to_live=time_to_live, state="starting"), above=above)
    return dyno.number


def _of(app_id: str, number: int) -> ColumnElement[bool]:
    return and_(OneOffDyno.app_id == app_id, OneOffDyno.type == one_off_dynos.RELEASE_TYPE,
                OneOffDyno.number == number)


@dataclass(frozen=True)
class Start:
    dyno_id: str | None        # None: a phase scheduled before its dyno was recorded (not listed)
    stopped_by: str | None     # set when it was stopped while it waited: "stopped by …"


def start(session: Session, app_id: str, number: int) -> Start:
    """The builder takes the waiting dyno: `up`, its created_at now (when it started, as the
    runner's dynos), unless a stop request came first."""
    row = session.scalars(select(OneOffDyno).where(_of(app_id, number))).first()
    if row is None:
        return Start(None, None)
    taken = session.execute(update(OneOffDyno).where(OneOffDyno.id == row.id, OneOffDyno.state == "starting")
                            .values(state="up", created_at=utcnow(), updated_at=utcnow())
                            .execution_options(synchronize_session=False))
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        return Start(row.id, None)
    session.refresh(row)
    return Start(row.id, row.ended_because or "stopped")


def stop_request(session: Session, dyno_id: str) -> str | None:
    """Who asked to stop the running dyno ("stopped by …"); None while nobody has."""
    state, why = session.execute(select(OneOffDyno.state, OneOffDyno.ended_because)
                                 .where(OneOffDyno.id == dyno_id)).one_or_none() or (None, None)
    return (why or "stopped") if state == "stopping" else None


def end(session: Session, ends: Iterable[tuple[str, int]], *, exit_code: int | None, why: str,
        crashed: bool) -> None:
    """The dynos (app id, number) of phases that ended, unless ended already (stopped while waiting);
    `why` follows the dyno's name in `ended_because` ("release.3 exited with status 0")."""
    for app_id, number in ends:
        session.execute(update(OneOffDyno).where(_of(app_id, number), OneOffDyno.state.in_(_NOT_ENDED))
                        .values(state="crashed" if crashed else "down", exit_code=exit_code,
                                ended_because=f"release.{number} {why}"[:255], updated_at=utcnow())
                        .execution_options(synchronize_session=False))


class StopWatch:
    """While a release dyno runs, in a thread: reads its row every POLL_SECONDS (at once when
    dyno_actions signals its id) and calls `on_stop(who)` once someone asked to stop it."""

    POLL_SECONDS = 2.0

    def __init__(self, database: Database, data_dir: Path, dyno_id: str | None,
                 on_stop: Callable[[str], None]) -> None:
        self.database, self.data_dir, self.dyno_id, self.on_stop = database, data_dir, dyno_id, on_stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name=f"stop-watch-{dyno_id}")

    def __enter__(self) -> "StopWatch":
        if self.dyno_id is not None:
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._done.set()
        if self.dyno_id is not None:
            signal_waiters(self.data_dir, self.dyno_id)  # out of its pause now
            self._thread.join()

    def _watch(self) -> None:
        assert self.dyno_id is not None
        with woken_by_signal(self.data_dir, self.dyno_id) as pause:
            while not self._done.is_set():
                try:
                    with self.database.session(write=False) as session:
                        who = stop_request(session, self.dyno_id)
                except Exception:  # noqa: BLE001 - a database hiccup: the next round asks again
                    log.warning("could not read %s's stop requests", self.dyno_id, exc_info=True)
                    who = None
                if who is not None:
                    self.on_stop(who)
                    return
                pause(self.POLL_SECONDS)
