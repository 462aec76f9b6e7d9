"""Leases of running jobs, kept alive by the worker that runs them.

Without a heartbeat a claim's lease had to outlast the longest run of its job (a build: its time
limit plus ten minutes), so a job whose worker died waited that long to be run again or failed. A
worker process that serves jobs (`Worker.serve`) runs a heartbeat instead: its claims get a short
lease (BERTH_JOB_LEASE_SECONDS) that a thread renews every third of it while the job still runs
under that claim. A worker that dies, or a machine that goes away, stops renewing: its jobs are due
again (or failed, for jobs that must not run twice) about one lease later, on any node. A process
without a heartbeat (a test draining jobs) claims with the queue's own long lease, as before.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from berth.db import Database, utcnow

if TYPE_CHECKING:
    from berth.jobs.queue import Queue

log = logging.getLogger("berth.worker")


class Heartbeat:
    def __init__(self, lease: timedelta) -> None:
        self.lease = lease
        self._lock = threading.Lock()
        self._held: dict[tuple[int, Any, int], tuple[Database, "Queue"]] = {}

    def hold(self, database: Database, queue: "Queue", job_id: Any, attempts: int) -> None:
        with self._lock:
            self._held[(id(queue), job_id, attempts)] = (database, queue)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def renew(self) -> None:
        """Each held claim's lease runs on from now; claims that ended (finished, or claimed again
        by another worker after a lapse) are forgotten."""
        from berth.jobs.queue import JobState

        with self._lock:
            held = list(self._held.items())
        for key, (database, queue) in held:
            _, job_id, attempts = key
            job = queue.model
            try:
                with database.transaction() as session:
                    result = session.execute(update(job).where(job.id == job_id, job.attempts == attempts,
                                                               job.state == JobState.RUNNING)
                                             .values(lease_until=utcnow() + self.lease))
                    still = bool(result.rowcount)
            except SQLAlchemyError as error:  # the database away: tried again at the next beat
                log.warning("could not renew the lease of job %s (%s)", job_id, type(error).__name__)
                continue
            if not still:
                with self._lock:
                    self._held.pop(key, None)

    def serve(self, stop: threading.Event) -> None:
        interval = self.lease.total_seconds() / 3
        while not stop.wait(interval):
            self.renew()


_current: Heartbeat | None = None


def start(lease: timedelta, stop: threading.Event) -> Heartbeat:
    """This process's heartbeat, renewing on a thread of its own until `stop` is set."""
    global _current
    heartbeat = _current = Heartbeat(lease)
    threading.Thread(target=heartbeat.serve, args=(stop,), name="job-leases", daemon=True).start()
    return heartbeat


def lease_for(queue: "Queue") -> timedelta:
    """A claim's first lease: the heartbeat's while one runs here, else the queue's own."""
    return _current.lease if _current is not None else queue.lease


def claimed(database: Database, queue: "Queue", job_id: Any, attempts: int) -> None:
    """A claim this process made: its lease is renewed while the heartbeat runs."""
    if _current is not None:
        _current.hold(database, queue, job_id, attempts)
