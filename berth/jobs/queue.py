"""Recorded jobs: the columns every job table has, and claiming, finishing and retrying them.

A job table is any model with the `JobRecord` columns. `Queue` holds what differs between job
types: the model, the column on which at most one job may run at a time (an add-on, an app),
and the lease. A running job whose lease passed was abandoned by a dead worker and is due
again; every job must therefore be safe to run twice.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, String, Update, and_, bindparam, exists, func, or_, select, \
    update
from sqlalchemy.orm import InstrumentedAttribute, Mapped, aliased, mapped_column

from berth.db import Database, PreparedStatement, UTCDateTime, utcnow
from berth.jobs import leases

MAX_BACKOFF_SECONDS = 3600.0


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobRecord:
    """The columns of a job table (a declarative mixin)."""

    state: Mapped[str] = mapped_column(String(16), index=True)  # a JobState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_until: Mapped[datetime | None]  # a running job whose lease passed was abandoned
    message: Mapped[str | None] = mapped_column(String(1000))  # user-safe outcome
    detail: Mapped[str | None] = mapped_column(String(2000))   # for operators
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class Queue:
    """One job table: `model` has an `id` and the JobRecord columns; `exclusive_on` is the column
    on which one job at a time may run; `lease` is longer than any run of one job."""

    model: Any
    exclusive_on: InstrumentedAttribute[Any]
    lease: timedelta  # without a heartbeat (berth.jobs.leases): longer than any run of one job

    def oldest_due(self, now: Any = None) -> Select[tuple[str]]:
        """The oldest due job whose subject has no other job running (`now`: a bind parameter
        for a statement prepared once; the current time by default)."""
        job = self.model
        now = utcnow() if now is None else now
        other = aliased(job)
        subject = self.exclusive_on.key
        busy = exists().where(getattr(other, subject) == getattr(job, subject), other.id != job.id,
                              other.state == JobState.RUNNING, other.lease_until > now)
        due = or_(and_(job.state == JobState.PENDING, job.next_attempt_at <= now),
                  and_(job.state == JobState.RUNNING, job.lease_until <= now))
        return select(job.id).where(due, ~busy).order_by(job.next_attempt_at, job.created_at).limit(1)

    def anything_due(self, database: Database) -> bool:
        """A look without the write lock: most of the time nothing is due."""
        with database.session(write=False) as session:
            return session.scalar(self.oldest_due()) is not None

    def count_due(self, database: Database, limit: int) -> int:
        """How many jobs are due, counting no further than `limit`."""
        with database.session(write=False) as session:
            due = self.oldest_due().limit(limit).subquery()
            return session.scalar(select(func.count()).select_from(due)) or 0

    def claim(self, *returning: Any) -> Update:
        """Take the oldest due job: one statement, so claiming costs no more than the row it
        updates (`FOR UPDATE SKIP LOCKED` on PostgreSQL). Parameters: those of `claim_times`.
        Its `attempts` after the claim identify this claim: the outcome is applied only while
        the job still runs with them (`still_claimed`)."""
        job = self.model
        now = bindparam("now", type_=UTCDateTime())
        chosen = self.oldest_due(now).with_for_update(skip_locked=True, of=job).scalar_subquery()
        return (update(job).where(job.id == chosen)
                .values(state=JobState.RUNNING, lease_until=bindparam("lease_until", type_=UTCDateTime()),
                        attempts=job.attempts + 1, updated_at=now)
                .returning(job.id, job.attempts, *returning))

    @functools.cached_property
    def _claim_statement(self) -> PreparedStatement:
        return PreparedStatement(self.claim())

    def claim_next(self, database: Database) -> tuple[Any, int] | None:
        """Claim the oldest due job in a statement of its own: (its id, its attempts), or None."""
        rows = self._claim_statement.run(database.autocommit_engine, self.claim_times())
        if not rows:
            return None
        self.took(database, rows[0][0], rows[0][1])
        return rows[0][0], rows[0][1]

    def claim_times(self) -> dict[str, datetime]:
        now = utcnow()
        return {"now": now, "lease_until": now + leases.lease_for(self)}

    def took(self, database: Database, job_id: Any, attempts: int) -> None:
        """Every claim says so: its lease is then renewed while this process's worker lives."""
        leases.claimed(database, self, job_id, attempts)

    def still_claimed(self, job_id: Any, attempts: Any) -> ColumnElement[bool]:
        """SQL: the job still runs under the claim that read `attempts`; a worker whose lease
        passed and whose job another worker claimed again applies nothing."""
        job = self.model
        return exists().where(job.id == job_id, job.state == JobState.RUNNING, job.attempts == attempts)

    @functools.cached_property
    def finish_claimed(self) -> PreparedStatement:
        """Finishing a claimed job: parameters job_id, attempts, state, message, detail, now."""
        job = self.model
        return PreparedStatement(
            update(job).where(job.id == bindparam("job_id"), job.state == JobState.RUNNING,
                              job.attempts == bindparam("attempts"))
            .values(state=bindparam("state"), lease_until=None, message=bindparam("message"),
                    detail=bindparam("detail"), updated_at=bindparam("now", type_=UTCDateTime())))

    def release_abandoned(self, database: Database) -> int:
        """On a single worker's start (SQLite): whatever was running belonged to a dead worker."""
        job = self.model
        with database.transaction() as session:
            result = session.execute(update(job).where(job.state == JobState.RUNNING)
                                     .values(state=JobState.PENDING, lease_until=None))
            return result.rowcount or 0


def finish(job: JobRecord, *, message: str | None = None, detail: str | None = None, failed: bool = False) -> None:
    job.state = JobState.FAILED if failed else JobState.DONE
    job.lease_until = None
    job.message, job.detail = message, detail


def retry_later(job: JobRecord, base_seconds: float, detail: str) -> None:
    """Due again after an exponential back-off (doubling per attempt, capped at an hour)."""
    delay = min(MAX_BACKOFF_SECONDS, base_seconds * 2 ** max(0, job.attempts - 1))
    job.state, job.lease_until = JobState.PENDING, None
    job.next_attempt_at = utcnow() + timedelta(seconds=delay)
    job.detail = detail
