"""Build records: creating one (checked at the edge), finding them, and their Platform API status.

A build is a job of `berth.jobs` (its table is the queue): at most one build of an app runs at a
time; the others wait, pending, in the order they came.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.config import Settings
from berth.db import Database, utcnow
from berth.errors import InvalidParams, NotFound
from berth.jobs.queue import JobState, Queue
from berth.outbound import TargetPolicy
from berth.platform.buildpack_installations import check_reference
from berth.platform.models import App, Build
from berth.platform.sources import SourceError, SourceFetcher

# Longer than the longest build (its time limit) plus fetching and packing: a live builder never
# loses its lease; a dead one's build is failed by the next builder (never run twice). A builder
# process renews a shorter lease instead (berth.jobs.leases), so a dead one's build fails sooner.
DEFAULT_TIMEOUT_SECONDS = 15 * 60
LEASE_MARGIN = timedelta(minutes=10)
NOT_FOUND = "Couldn't find that build."
KILLED_MESSAGE = ("The builder stopped while this build ran (it was restarted or killed), so the build "
                  "failed and nothing was released. Start the build again.")


def build_queue(timeout_seconds: float) -> Queue:
    return Queue(Build, exclusive_on=Build.app_id, lease=timedelta(seconds=timeout_seconds) + LEASE_MARGIN)


def status_of(build: Build) -> str:
    """pending while queued or running; succeeded or failed once finished (Heroku's statuses)."""
    if build.state == JobState.DONE:
        return "succeeded"
    if build.state == JobState.FAILED:
        return "failed"
    return "pending"


FINISHED_STATES = (JobState.DONE, JobState.FAILED)


def is_finished(build: Build) -> bool:
    return build.state in FINISHED_STATES


def finished_by_id(database: Database, build_id: str) -> bool:
    """The build's final status is stored (or it is gone with its app): its output is complete."""
    with database.session(write=False) as session:
        state = session.scalar(select(Build.state).where(Build.id == build_id))
    return state is None or state in FINISHED_STATES


def create_build(session: Session, settings: Settings, app: App, user: Account, *, source_url: str,
                 checksum: str | None = None, version: str | None = None,
                 buildpacks: Sequence[str] = ()) -> Build:
    """A pending build; what it could never build with is refused here (InvalidParams), before
    anything is recorded: a source URL Berth may not fetch, a bad checksum, a buildpack it cannot use."""
    try:
        SourceFetcher.from_settings(settings).check(source_url, checksum, account_id=user.id)
    except SourceError as exc:
        raise InvalidParams(str(exc)) from None
    policy = TargetPolicy.from_settings(settings)
    for reference in buildpacks:
        check_reference(reference, policy)
    build = Build(app_id=app.id, user_id=user.id, source_url=source_url, source_checksum=checksum or None,
                  source_version=version or None, buildpacks=list(buildpacks), stack=app.build_stack,
                  state=JobState.PENDING, attempts=0, next_attempt_at=utcnow())
    session.add(build)
    session.flush()
    return build


def builds_query(app: App) -> Select[tuple[Build]]:
    return select(Build).where(Build.app_id == app.id)


def get_build(session: Session, app: App, ref: str) -> Build:
    """One of `app`'s builds by id; another app's is not found, as if it did not exist."""
    build = (session.scalar(builds_query(app).where(Build.id == ref.lower()))
             if UUID_PATTERN.match(ref) else None)
    if build is None:
        raise NotFound(NOT_FOUND, resource="build")
    return build


def fail_abandoned(database: Database, *, all_running: bool) -> list[str]:
    """Builds a dead builder left running are failed, never run again (a half-built app is not
    resumable, and running its buildpacks twice is not known to be safe); their ids. `all_running`:
    the only builder is starting (SQLite), so every running build was a dead one's; otherwise only
    those whose lease passed."""
    now = utcnow()
    condition = Build.state == JobState.RUNNING
    if not all_running:
        condition = condition & (Build.lease_until <= now)
    with database.transaction() as session:
        ids = list(session.scalars(select(Build.id).where(condition).with_for_update(skip_locked=True)))
        if ids:
            session.execute(update(Build).where(Build.id.in_(ids), condition).values(
                state=JobState.FAILED, lease_until=None, message=KILLED_MESSAGE, updated_at=now))
        return ids
