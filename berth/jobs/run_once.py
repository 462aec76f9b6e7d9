"""A job type whose jobs run at most once (builds, release phases): running one twice is not known
to be safe, so a job a dead runner left running fails instead of being claimed again.

Subclasses name their queue and say what running a claimed job, failing one claimed a second
time, and failing those a dead runner left (`fail_abandoned`) mean.
"""
from __future__ import annotations

from berth.db import Database, PreparedStatement
from berth.jobs.queue import Queue


class RunOnceJobs:
    name: str

    def __init__(self, database: Database, queue: Queue) -> None:
        self.database, self.queue = database, queue
        self._claim = PreparedStatement(queue.claim())

    # -- what a subclass defines ----------------------------------------------------------------

    def run_claimed(self, job_id: str, attempts: int) -> None:
        raise NotImplementedError

    def fail_claimed_again(self, job_id: str, attempts: int) -> None:
        """The job was claimed before: its runner died mid-run (the sweep had not failed it yet)."""
        raise NotImplementedError

    def fail_abandoned(self, *, all_running: bool) -> None:
        """Fail the jobs a dead runner left running: every running one when `all_running` (the
        only runner is starting, SQLite), else those whose lease passed."""
        raise NotImplementedError

    # -- JobType ---------------------------------------------------------------------------------

    def start_up(self) -> None:
        self.fail_abandoned(all_running=self.database.is_sqlite)

    def sweep(self) -> None:
        self.fail_abandoned(all_running=False)

    def anything_due(self) -> bool:
        return self.queue.anything_due(self.database)

    def count_due(self, limit: int) -> int:
        return self.queue.count_due(self.database, limit)

    def run_one(self) -> bool:
        rows = self._claim.run(self.database.autocommit_engine, self.queue.claim_times())
        if not rows:
            return False
        [(job_id, attempts)] = rows
        self.queue.took(self.database, job_id, attempts)
        if attempts > 1:
            self.fail_claimed_again(job_id, attempts)
        else:
            self.run_claimed(job_id, attempts)
        return True
