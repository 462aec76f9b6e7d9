"""berth.jobs on a job table of its own (not the broker's): one job per subject at a time, leases,
claims that identify themselves, back-off, and one worker running several job types."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from berth.config import Settings
from berth.db import Database, PreparedStatement, new_id, utcnow
from berth.jobs.queue import JobRecord, JobState, Queue, finish, retry_later
from berth.jobs.worker import Worker


class _Base(DeclarativeBase):
    pass


class Chore(JobRecord, _Base):
    __tablename__ = "chores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subject: Mapped[str] = mapped_column(String(36))


CHORES = Queue(Chore, exclusive_on=Chore.subject, lease=timedelta(minutes=1))
CLAIM = PreparedStatement(CHORES.claim(Chore.subject))


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    _Base.metadata.create_all(database.write_engine)
    yield database
    database.dispose()


def add(database: Database, subject: str, **values: Any) -> str:
    with database.transaction() as session:
        chore = Chore(subject=subject, state=JobState.PENDING, **values)
        session.add(chore)
        session.flush()
        return chore.id


def claim(database: Database, **times: Any) -> tuple[str, int, str] | None:
    rows = CLAIM.run(database.autocommit_engine, {**CHORES.claim_times(), **times})
    return tuple(rows[0]) if rows else None  # type: ignore[return-value]


def test_one_job_per_subject_runs_at_a_time_and_a_lapsed_lease_is_claimed_again(database: Database) -> None:
    first, second = add(database, "app-1"), add(database, "app-1")
    other = add(database, "app-2")
    assert CHORES.count_due(database, limit=10) == 3
    claimed = claim(database)
    assert claimed is not None and claimed[0] == first and claimed[1] == 1
    # app-1 is busy: its second job waits; app-2's may run.
    assert claim(database)[0] == other  # type: ignore[index]
    assert claim(database) is None and not CHORES.anything_due(database)
    # The first claim's lease lapses (its worker died): the job is due again, under a new claim.
    later = utcnow() + timedelta(minutes=2)
    again = claim(database, now=later, lease_until=later + CHORES.lease)
    assert again is not None and again[0] == first and again[1] == 2
    with database.transaction() as session:
        stale = session.scalar(select(CHORES.still_claimed(first, 1)))
        current = session.scalar(select(CHORES.still_claimed(first, 2)))
        assert (stale, current) == (False, True)
        # The stale claim's finish changes nothing; the current one's finishes it.
        for attempts in (1, 2):
            CHORES.finish_claimed.run_in(session, {"job_id": first, "attempts": attempts, "state": JobState.DONE,
                                                   "message": f"claim {attempts}", "detail": None, "now": later})
    with database.session(write=False) as session:
        done = session.get(Chore, first)
        assert done is not None and (done.state, done.message, done.lease_until) == ("done", "claim 2", None)
    assert second  # app-1's second job is due once the first is done
    assert claim(database, now=later, lease_until=later + CHORES.lease)[0] == second  # type: ignore[index]


def test_retries_back_off_and_finish_records_the_outcome(database: Database) -> None:
    job_id = add(database, "app-1", attempts=3)
    with database.transaction() as session:
        chore = session.get(Chore, job_id)
        assert chore is not None
        before = utcnow()
        retry_later(chore, 1.0, "provider down")
        assert chore.state == JobState.PENDING and chore.detail == "provider down"
        assert timedelta(seconds=3.5) < chore.next_attempt_at - before < timedelta(seconds=4.5)  # 1 s × 2^(3-1)
    assert not CHORES.anything_due(database)  # not yet
    with database.transaction() as session:
        chore = session.get(Chore, job_id)
        assert chore is not None
        chore.attempts = 40
        retry_later(chore, 1.0, "still down")
        assert chore.next_attempt_at - utcnow() <= timedelta(hours=1)  # capped
        finish(chore, message="gave up", failed=True)
        assert (chore.state, chore.message) == (JobState.FAILED, "gave up")


def test_released_after_a_crash_on_start(database: Database) -> None:
    add(database, "app-1")
    assert claim(database) is not None and not CHORES.anything_due(database)
    assert CHORES.release_abandoned(database) == 1
    assert CHORES.anything_due(database)


class Recorder:
    """A job type that records what it ran."""

    def __init__(self, name: str, jobs: list[str], ran: list[str]) -> None:
        self.name, self.jobs, self.ran = name, jobs, ran

    def start_up(self) -> None:
        self.ran.append(f"{self.name}: start")

    def sweep(self) -> None:
        self.ran.append(f"{self.name}: sweep")

    def anything_due(self) -> bool:
        return bool(self.jobs)

    def count_due(self, limit: int) -> int:
        return min(limit, len(self.jobs))

    def run_one(self) -> bool:
        if not self.jobs:
            return False
        self.ran.append(f"{self.name}: {self.jobs.pop(0)}")
        return True


def test_one_worker_runs_every_job_type_it_is_given(tmp_path: Path) -> None:
    ran: list[str] = []
    provisioning = Recorder("provision", ["p1", "p2"], ran)
    releases = Recorder("release", ["r1"], ran)
    worker = Worker(Settings(data_dir=tmp_path, database_url="sqlite://", worker_threads=2), [provisioning, releases])
    worker.start_up()
    assert worker.count_due(limit=10) == 3 and worker.count_due(limit=2) == 2
    assert worker.drain() == 3 and not worker.run_one()
    assert ran == ["provision: start", "release: start", "provision: sweep", "release: sweep",
                   "provision: p1", "provision: p2", "release: r1"]
    assert worker.job_type("release") is releases
