"""App setup records: creating one with its app and build, finding the caller's, their status."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.config import Settings
from berth.db import utcnow
from berth.errors import NotFound
from berth.jobs.queue import JobState, Queue
from berth.outbound import TargetPolicy
from berth.platform import apps
from berth.platform.buildpack_installations import check_reference
from berth.platform.builds import records as builds
from berth.platform.models import AppSetup, Build

NOT_FOUND = "Couldn't find that app setup."
# While its build runs a setup waits; the build's end makes it due at once, and the sweep finds any
# whose wake-up was lost (a builder killed mid-build).
WAITING = datetime(9999, 1, 1, tzinfo=timezone.utc)


class Kind(StrEnum):
    SETUP = "setup"    # POST /app-setups: a new app; a failure destroys it
    DEPLOY = "deploy"  # an app's first deploy had an app.json; a failure undoes what it applied


class Stage(StrEnum):
    BUILDING = "building"      # waiting for its build
    POSTDEPLOY = "postdeploy"  # its postdeploy script started (never run twice)
    FINISHED = "finished"


@dataclass(frozen=True)
class Overrides:
    env: dict[str, str] = field(default_factory=dict)
    buildpacks: list[str] = field(default_factory=list)

    def dumps(self) -> str:
        return json.dumps({"env": self.env, "buildpacks": self.buildpacks})

    @classmethod
    def loads(cls, text: str | None) -> "Overrides":
        data = json.loads(text) if text else {}
        return cls(dict(data.get("env") or {}), list(data.get("buildpacks") or []))


def setup_queue(timeout_seconds: float) -> Queue:
    """One job per app at a time; the lease outlasts a postdeploy run."""
    return Queue(AppSetup, exclusive_on=AppSetup.app_id, lease=timedelta(seconds=timeout_seconds, minutes=10))


def status_of(setup: AppSetup) -> str:
    return {JobState.DONE: "succeeded", JobState.FAILED: "failed"}.get(setup.state, "pending")  # type: ignore[call-overload]


def create_setup(session: Session, settings: Settings, user: Account, *, source_url: str, checksum: str | None,
                 version: str | None, app_params: dict[str, Any], overrides: Overrides) -> AppSetup:
    """The app, its first build and the setup, in the caller's transaction; what cannot work is
    refused (InvalidParams) before anything is written: the source URL, a buildpack, the app's name."""
    policy = TargetPolicy.from_settings(settings)
    for reference in overrides.buildpacks:
        check_reference(reference, policy)
    app = apps.create_app(session, settings, user, name=app_params.get("name"), region=app_params.get("region"),
                          stack=app_params.get("stack"))
    build = builds.create_build(session, settings, app, user, source_url=source_url, checksum=checksum,
                                version=version)
    setup = AppSetup(kind=Kind.SETUP, account_id=user.id, app_id=app.id, app_name=app.name, build_id=build.id,
                     stage=Stage.BUILDING, overrides=overrides.dumps(), manifest_errors=[], applied={},
                     state=JobState.PENDING, attempts=0, next_attempt_at=WAITING)
    session.add(setup)
    session.flush()
    return setup


def get_setup(session: Session, caller_id: str, ref: str) -> AppSetup:
    """The caller's own setup; another account's is not found, as if it did not exist."""
    setup = (session.scalar(select(AppSetup).where(AppSetup.id == ref.lower(), AppSetup.account_id == caller_id))
             if UUID_PATTERN.match(ref) else None)
    if setup is None:
        raise NotFound(NOT_FOUND, resource="app-setup")
    return setup


def setup_of_build(session: Session, build_id: str) -> AppSetup | None:
    return session.scalar(select(AppSetup).where(AppSetup.build_id == build_id))


def open_setup_of_app(session: Session, app_id: str) -> AppSetup | None:
    """A setup of the app still at work (building, or undoing a failed deploy)."""
    return session.scalar(select(AppSetup).where(AppSetup.app_id == app_id,
                                                 AppSetup.state.in_((JobState.PENDING, JobState.RUNNING))))


def build_finished(session: Session, build: Build) -> None:
    """In the transaction that stores a build's final status: its setup, if any, comes due."""
    session.execute(update(AppSetup).where(AppSetup.build_id == build.id, AppSetup.state == JobState.PENDING)
                    .values(build_status=builds.status_of(build), next_attempt_at=utcnow()))


def wake_stranded(session: Session) -> int:
    """Setups still waiting for a build that finished (its wake-up lost) or is gone: due now."""
    finished = select(Build.id).where(Build.state.in_(builds.FINISHED_STATES))
    present = select(Build.id)
    result = session.execute(update(AppSetup).where(
        AppSetup.state == JobState.PENDING, AppSetup.next_attempt_at == WAITING,
        AppSetup.build_id.in_(finished) | AppSetup.build_id.not_in(present)).values(next_attempt_at=utcnow()))
    return result.rowcount or 0


def keeps_output(session: Session, build_id: str) -> bool:
    """A setup names this build: its output stays readable after a failed setup destroyed the app."""
    return setup_of_build(session, build_id) is not None
