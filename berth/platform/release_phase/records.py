"""Release phase records: scheduling one for each new release whose slug has a `release` command,
their queue (one per app at a time, in the order releases were cut), and a dead runner's leftovers.

Releases are cut in `releases.create_releases`, which calls `schedule` before announcing them, so
RELEASE_CREATED already tells a pending release from a succeeded one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from berth.db import Database, utcnow
from berth.jobs.queue import JobState, Queue
from berth.platform.models import Release, ReleasePhase, ReleaseStatus, Slug
from berth.platform.release_phase import dyno as release_dyno

OUTPUT_KIND = "releases"  # builds.output's directory for release phase output
DEFAULT_TIMEOUT_SECONDS = 3600.0  # Heroku's hard limit (runtime.md §5.2)
# Longer than the command's time limit plus unpacking: a live builder never loses its lease.
LEASE_MARGIN = timedelta(minutes=10)
FINISHED_STATES = (JobState.DONE, JobState.FAILED)
KILLED_MESSAGE = ("The builder stopped while the release command ran (it was restarted or killed), so the "
                  "release failed; the app keeps running its previous release. Deploy again, or roll back, "
                  "to run the release command again.")


ENDED_WITH_BUILDER = "ended when the builder running it stopped"  # a release dyno's end, then


def release_phase_queue(timeout_seconds: float) -> Queue:
    return Queue(ReleasePhase, exclusive_on=ReleasePhase.app_id,
                 lease=timedelta(seconds=timeout_seconds) + LEASE_MARGIN)


@dataclass(frozen=True)
class Candidate:
    """A release just inserted, whose slug may have a release command."""

    release_id: str
    app_id: str
    slug_id: str


def schedule(session: Session, candidates: Sequence[Candidate], now: datetime) -> set[str]:
    """Mark pending each candidate whose slug has a `release` process type and queue its release
    phase with its waiting one-off dyno release.N (N counting per app with the app's other one-off
    dynos; callers hold the apps' lock); the ids of those."""
    slug_ids = {candidate.slug_id for candidate in candidates}
    commands = {slug_id: (types or {}).get("release") for slug_id, types in session.execute(
        select(Slug.id, Slug.process_types).where(Slug.id.in_(slug_ids)))}
    phased = [candidate for candidate in candidates if (commands.get(candidate.slug_id) or "").strip()]
    if not phased:
        return set()
    app_ids = {candidate.app_id for candidate in phased}
    numbers: dict[str, int] = dict(session.execute(  # type: ignore[arg-type]
        select(ReleasePhase.app_id, func.max(ReleasePhase.number))
        .where(ReleasePhase.app_id.in_(app_ids)).group_by(ReleasePhase.app_id)).all())
    ids = [candidate.release_id for candidate in phased]
    session.execute(update(Release).where(Release.id.in_(ids)).values(status=ReleaseStatus.PENDING),
                    execution_options={"synchronize_session": False})
    for candidate in phased:
        numbers[candidate.app_id] = release_dyno.record(
            session, candidate.app_id, candidate.release_id, commands[candidate.slug_id],
            above=numbers.get(candidate.app_id, 0), time_to_live=int(DEFAULT_TIMEOUT_SECONDS))
        session.add(ReleasePhase(app_id=candidate.app_id, release_id=candidate.release_id,
                                 number=numbers[candidate.app_id], command=commands[candidate.slug_id],
                                 state=JobState.PENDING, attempts=0, next_attempt_at=now,
                                 created_at=now, updated_at=now))
    session.flush()
    return set(ids)


def of_releases(session: Session, release_ids: Sequence[str]) -> dict[str, ReleasePhase]:
    """The release phases of these releases (those that have one), by release id."""
    if not release_ids:
        return {}
    return {phase.release_id: phase for phase in session.scalars(
        select(ReleasePhase).where(ReleasePhase.release_id.in_(list(release_ids))))}


def finished_by_id(database: Database, phase_id: str) -> bool:
    """The phase's outcome is stored (or it is gone with its app): its output is complete."""
    with database.session(write=False) as session:
        state = session.scalar(select(ReleasePhase.state).where(ReleasePhase.id == phase_id))
    return state is None or state in FINISHED_STATES


def fail_abandoned(database: Database, *, all_running: bool) -> list[str]:
    """Phases a dead builder left running fail, with their releases (a release command is not
    known to be safe to run twice, and the previous release keeps running meanwhile); their ids.
    `all_running`: the only builder is starting (SQLite); otherwise only those whose lease passed."""
    now = utcnow()
    condition = ReleasePhase.state == JobState.RUNNING
    if not all_running:
        condition = condition & (ReleasePhase.lease_until <= now)
    with database.transaction() as session:
        rows = session.execute(select(ReleasePhase.id, ReleasePhase.release_id, ReleasePhase.app_id,
                                      ReleasePhase.number).where(condition).with_for_update(skip_locked=True)).all()
        if rows:
            ids = [phase_id for phase_id, *_ in rows]
            session.execute(update(ReleasePhase).where(ReleasePhase.id.in_(ids), condition).values(
                state=JobState.FAILED, lease_until=None, message=KILLED_MESSAGE, updated_at=now))
            session.execute(update(Release).where(Release.id.in_([release_id for _, release_id, *_ in rows]),
                                                  Release.status == ReleaseStatus.PENDING)
                            .values(status=ReleaseStatus.FAILED, updated_at=now),
                            execution_options={"synchronize_session": False})
            release_dyno.end(session, [(app_id, number) for *_, app_id, number in rows], exit_code=None,
                             why=ENDED_WITH_BUILDER, crashed=True)
        return [phase_id for phase_id, *_ in rows]
