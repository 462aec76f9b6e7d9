"""The worker loop every job type runs in: threads that claim and run due jobs, woken at once.

Several threads each claim and run jobs, so one slow job (a slow provider) does not hold up the
others. A job type knows its own table and what running one means; the worker only knows when
to ask. On PostgreSQL any number of workers may run; on SQLite, one.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Protocol, Sequence

from berth.config import Settings
from berth.db import Database
from berth.jobs import leases
from berth.jobs.queue import Queue
from berth.jobs.wakeup import NudgeListener

log = logging.getLogger("berth.worker")
POLL_SECONDS = 1.0
SWEEP_SECONDS = 10.0


class JobType(Protocol):
    """What a worker runs: one table of jobs (see berth.jobs.queue)."""

    name: str

    def start_up(self) -> None:
        """Recover what a crash left (a single worker's abandoned jobs run again)."""

    def sweep(self) -> None:
        """Periodic housekeeping (every SWEEP_SECONDS), in the worker's main thread."""

    def anything_due(self) -> bool:
        """A cheap look without the write lock."""

    def count_due(self, limit: int) -> int:
        """How many jobs are due, counting no further than `limit`."""

    def run_one(self) -> bool:
        """Claim and run one due job; False when none was due."""


class QueuedJobs:
    """The looks of a JobType whose jobs are one `Queue`'s (berth.jobs.queue)."""

    database: Database
    queue: Queue

    def anything_due(self) -> bool:
        return self.queue.anything_due(self.database)

    def count_due(self, limit: int) -> int:
        return self.queue.count_due(self.database, limit)


class Wakeups:
    """Wakes idle threads, as many as there is work for. Waking all of them on each nudge sent
    every thread racing to claim one job, and the losers' reads slowed the winner down (the
    GIL, the write lock)."""

    def __init__(self, limit: int) -> None:
        self._condition = threading.Condition()
        self._permits, self._limit = 0, limit

    def signal(self, count: int = 1) -> None:
        with self._condition:
            self._permits = min(self._limit, self._permits + count)
            self._condition.notify(count)

    def wait(self, timeout: float) -> bool:
        """True when woken for work, False when the timeout passed."""
        with self._condition:
            if self._permits == 0:
                self._condition.wait(timeout)
            if self._permits == 0:
                return False
            self._permits -= 1
            return True


class Worker:
    def __init__(self, settings: Settings, job_types: Sequence[JobType]) -> None:
        self.settings, self.job_types = settings, list(job_types)
        self.wakeups = Wakeups(max(1, settings.worker_threads))

    def job_type(self, name: str) -> JobType:
        return next(job_type for job_type in self.job_types if job_type.name == name)

    def start_up(self) -> None:
        for job_type in self.job_types:
            job_type.start_up()
        self.sweep()

    def sweep(self) -> None:
        for job_type in self.job_types:
            job_type.sweep()

    def run_one(self, *, look_first: bool = True) -> bool:
        """Claim and run one due job of any type. False when there was none.

        Claiming takes the write lock; a thread woken for work skips the look before it,
        which would only delay the claim."""
        for job_type in self.job_types:
            if look_first and not job_type.anything_due():
                continue
            if job_type.run_one():
                return True
        return False

    def drain(self, limit: int = 1000) -> int:
        """Run jobs while any is due, at most `limit` (tests drive the worker with this)."""
        count = 0
        while count < limit and self.run_one():
            count += 1
        return count

    def count_due(self, limit: int) -> int:
        return min(limit, sum(job_type.count_due(limit) for job_type in self.job_types))

    def serve(self, stop: threading.Event) -> None:
        # Before the first claim: every claim of this process gets the heartbeat's short lease.
        leases.start(timedelta(seconds=self.settings.job_lease_seconds), stop)
        self.start_up()
        threads = [threading.Thread(target=self._loop, args=(stop,), name=f"worker-{i}", daemon=True)
                   for i in range(max(1, self.settings.worker_threads))]
        for thread in threads:
            thread.start()
        listener = NudgeListener(self.settings.data_dir)
        last_sweep = time.monotonic()
        try:
            while not stop.is_set():
                nudges = listener.wait(POLL_SECONDS)  # one per job queued
                if time.monotonic() - last_sweep > SWEEP_SECONDS:
                    self.sweep()
                    last_sweep = time.monotonic()
                if not nudges:  # a poll tick: retries come due, and nudges can be lost
                    nudges = self.count_due(self.settings.worker_threads)
                self.wakeups.signal(nudges)
        finally:
            listener.close()
            for thread in threads:
                thread.join(timeout=5)

    def _loop(self, stop: threading.Event) -> None:
        woken = False
        while not stop.is_set():
            try:
                busy = self.run_one(look_first=not woken)
            except Exception:  # one bad job must not stop the worker
                log.exception("a job failed unexpectedly; it will be claimed again")
                busy = False
            woken = False
            if not busy:
                woken = self.wakeups.wait(POLL_SECONDS)
