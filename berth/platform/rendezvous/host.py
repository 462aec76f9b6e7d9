"""The rendezvous host's dynos, against the database: a secret from `POST /apps/{app}/dynos` (kept
only as a digest in `one_off_dynos`) starts that dyno's command from its release's slug, with the
release's config, the client's `env` and `DYNO=run.N`; detached dynos run into the app's log. Every
run is known here while it lasts, so a stop request (`stopping`) reaches its process; how it ended
is recorded on the row and, as Heroku's `heroku[run.N]` lines, in the app's log."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from berth.db import Database
from berth.platform import dyno_sizes, one_off_dynos, releases
from berth.platform.logs.app_log import AppLog
from berth.platform.models import OneOffDyno, Slug
from berth.platform.one_off import STOP_GRACE_SECONDS, OneOffRun
from berth.platform.slug_runs import RunResult, SlugRunner

log = logging.getLogger(__name__)


@dataclass
class _Running:
    """A run this host started, with the app log its state lines go to."""

    dyno_id: str
    name: str
    run: OneOffRun
    log: AppLog
    stop_asked_at: float | None = None
    stop_grace: float = STOP_GRACE_SECONDS
    stop_reason: str = "on request"
    ended: threading.Event = field(default_factory=threading.Event)  # its end is recorded


class DatabaseTickets:
    """What RendezvousServer asks for `claim(secret)`: the one-off dyno that secret starts, once;
    and the host's other duties on the runs it holds (detached runs, stop requests, sweeps)."""

    def __init__(self, database: Database, runner: SlugRunner, *, stop_grace: float = STOP_GRACE_SECONDS,
                 host: str = "") -> None:
        self.database, self.runner, self.stop_grace = database, runner, stop_grace
        self.host = host  # this node's name, recorded on each row it claims
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    # -- starting ----------------------------------------------------------------------------------

    def claim(self, secret: str) -> OneOffRun | None:
        with self.database.transaction() as session:
            dyno = one_off_dynos.claim_attached(session, secret, self.host)
            if dyno is None:
                return None
            entry = self._hold(session, dyno)
        return entry.run

    def run_next_detached(self) -> bool:
        """Run the oldest waiting detached dyno (`heroku run:detached`) to its end, its output in the
        app's log as `app[run.N]` and its state changes as `heroku[run.N]`; False when none waits."""
        entry = self._claim_detached()
        if entry is None:
            return False
        self._run_detached(entry)
        return True

    def start_next_detached(self) -> bool:
        """As run_next_detached, in a thread of its own; False when none waits."""
        entry = self._claim_detached()
        if entry is None:
            return False
        threading.Thread(target=self._run_detached, args=(entry,), daemon=True, name=f"one-off-{entry.name}").start()
        return True

    def _claim_detached(self) -> _Running | None:
        with self.database.transaction() as session:
            dyno = one_off_dynos.claim_detached(session, self.host)
            return None if dyno is None else self._hold(session, dyno)

    def _run_detached(self, entry: _Running) -> None:
        try:
            entry.run.run_detached(entry.log.line)
        except Exception:  # noqa: BLE001 - on_end has recorded why, in the log and on the row
            pass

    def _hold(self, session: Session, dyno: OneOffDyno) -> _Running:
        """The run of a freshly claimed row, known here until it ends; its start in the app's log."""
        slug = session.get(Slug, dyno.release.slug_id)
        config = {**releases.release_config(dyno.release), **json.loads(dyno.env)}
        size = dyno_sizes.of_stored(dyno.size)
        run = OneOffRun(self.runner, slug.checksum if slug else "", dyno.command, dyno.name, config,
                        time_to_live=dyno.time_to_live, tty=dyno.tty, used=one_off_dynos.age_seconds(dyno),
                        memory_limit=size.memory_bytes, process_limit=size.process_limit)
        entry = _Running(dyno.id, dyno.name, run, AppLog(self.database, dyno.app_id, dyno.name))
        entry.log.line(f"Starting process with command `{dyno.command}`", source="heroku")
        run.on_up = lambda: entry.log.line("State changed from starting to up", source="heroku")
        run.on_end = lambda result, why: self._ended(entry, result, why)
        with self._lock:
            self._running[dyno.id] = entry
        return entry

    # -- ending ------------------------------------------------------------------------------------

    def _ended(self, entry: _Running, result: RunResult | None, why: str) -> None:
        with self._lock:
            self._running.pop(entry.dyno_id, None)
        try:
            self._record_end(entry, result, why)
        finally:
            entry.ended.set()  # even when the database failed: a shutdown must not wait for it

    def _record_end(self, entry: _Running, result: RunResult | None, why: str) -> None:
        say = lambda line: entry.log.line(line, source="heroku")  # noqa: E731
        stopped = entry.stop_asked_at is not None and result is not None
        if stopped and time.monotonic() - entry.stop_asked_at >= entry.stop_grace:  # type: ignore[operator]
            say(f"Error R12 (Exit timeout) -> At least one process failed to exit within "
                f"{entry.stop_grace:g} seconds of SIGTERM")
            say("Stopping remaining processes with SIGKILL")
        if stopped:
            why = f"exited with status {result.exit_code}"  # type: ignore[union-attr]
        say(f"Process {why}")
        if result is None:
            say("State changed from starting to crashed")
        else:
            state = "down" if stopped else "crashed" if result.timed_out else "complete"
            say(f"State changed from up to {state}")  # Heroku's word for a one-off's end, any status
        entry.log.flush()
        if stopped:
            why = f"was stopped {entry.stop_reason} ({why})"
        with self.database.transaction() as session:
            one_off_dynos.finish(session, entry.dyno_id, exit_code=result.exit_code if result else None,
                                 why=f"{entry.name} {why}", crashed=result is None or result.timed_out)

    def carry_out_stops(self) -> list[str]:
        """Stop the runs someone asked to stop (`stopping`): SIGTERM now, SIGKILL after the grace,
        each in a thread of its own. Returns their names."""
        with self._lock:
            held = {dyno_id: entry for dyno_id, entry in self._running.items() if entry.stop_asked_at is None}
        with self.database.session(write=False) as session:
            asked = one_off_dynos.stop_requests(session, list(held))
        for dyno_id in asked:
            self._stop(held[dyno_id], self.stop_grace)
        return [held[dyno_id].name for dyno_id in asked]

    def _stop(self, entry: _Running, grace: float, reason: str = "on request") -> threading.Thread:
        entry.stop_asked_at, entry.stop_grace, entry.stop_reason = time.monotonic(), grace, reason
        entry.log.line("Stopping all processes with SIGTERM", source="heroku")
        stopper = threading.Thread(target=entry.run.stop, args=(grace,), daemon=True, name=f"stop-{entry.name}")
        stopper.start()
        return stopper

    def stop_all(self, grace: float) -> None:
        """The host is shutting down: stop every run it holds and wait until their ends are recorded."""
        with self._lock:
            entries = list(self._running.values())
        for entry in entries:
            if entry.stop_asked_at is None:
                self._stop(entry, grace, "because the rendezvous host shut down")
        deadline = time.monotonic() + grace + 5
        for entry in entries:
            entry.ended.wait(max(0.0, deadline - time.monotonic()))

    def sweep(self) -> None:
        """End rows nothing will end: attached dynos nobody attached to within the window (R13 in
        the app's log), and dynos long past their time to live (stopped here too, if held)."""
        with self.database.transaction() as session:
            never = [(d.app_id, d.name) for d in one_off_dynos.sweep_never_attached(session)]
            outlived = [(d.id, d.app_id, d.name, d.time_to_live) for d in one_off_dynos.sweep_outlived(session)]
        for app_id, name in never:
            app_log = AppLog(self.database, app_id, name)
            app_log.line("Error R13 (Attach error) -> Failed to attach to process", source="heroku")
            app_log.line("State changed from starting to down", source="heroku")
            app_log.flush()
        for dyno_id, app_id, name, ttl in outlived:
            with self._lock:
                entry = self._running.pop(dyno_id, None)
            if entry is not None:
                self._stop(entry, 0)
            app_log = AppLog(self.database, app_id, name)
            app_log.line(f"Process outlived its time to live of {ttl} s and was stopped", source="heroku")
            app_log.line("State changed from up to crashed", source="heroku")
            app_log.flush()

    def running(self) -> list[str]:
        """The names of the runs held here."""
        with self._lock:
            return sorted(entry.name for entry in self._running.values())
