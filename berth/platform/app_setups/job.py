"""App setups as a job type (run by the worker): once a setup's build finished, finish the setup.

- The build failed (a manifest error, an add-on refused, the code): a setup's new app is destroyed
  (nothing of the setup is left); a first deploy's app.json is undone on its app.
- The build succeeded: `scripts.postdeploy` runs once in the sandbox, from the release's slug with
  its config; its output goes to the setup and to the app's log stream. A worker that dies while
  it runs leaves the setup failed, never run twice (a postdeploy seeds data: twice is not safe).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Protocol

from sqlalchemy.orm import Session

from berth.accounts import Account
from berth.config import Settings
from berth.db import Database, utcnow
from berth.hooks import hooks_of
from berth.jobs.queue import JobState, Queue
from berth.jobs.worker import QueuedJobs
from berth.platform import apps, releases
from berth.platform.app_setups import records
from berth.platform.app_setups.manifests import Applied, undo
from berth.platform.app_setups.records import WAITING, Kind, Stage
from berth.platform.logs.app_log import AppLog
from berth.platform.models import App, AppSetup, Build, Release, ReleaseStatus, Slug

log = logging.getLogger("berth.worker")
MAX_OUTPUT_CHARS = 64 * 1024
DEFAULT_POSTDEPLOY_SECONDS = 3600.0  # Heroku's limit for the release phase; a postdeploy gets the same
RELEASE_POLL_SECONDS = 2.0  # while the build's release phase runs
INTERRUPTED = ("The postdeploy script was interrupted (the worker running it stopped); it is not run twice. "
               "Run it yourself once the app runs, or create the setup again.")


@dataclass(frozen=True)
class PostdeployRun:
    app_id: str
    release_version: int
    slug_checksum: str
    config: dict[str, str]
    command: str


@dataclass(frozen=True)
class PostdeployResult:
    exit_code: int
    description: str  # how it ended, in words ("exited with status 1")


class PostdeployRunner(Protocol):
    def __call__(self, run: PostdeployRun, on_line: Callable[[str], None]) -> PostdeployResult: ...


class AppSetupJobs(QueuedJobs):
    """The job type of `app_setups` (berth.jobs.worker.JobType)."""

    name = "app-setups"

    def __init__(self, database: Database, settings: Settings, postdeploy: PostdeployRunner,
                 *, timeout_seconds: float = DEFAULT_POSTDEPLOY_SECONDS) -> None:
        self.database, self.settings, self.postdeploy = database, settings, postdeploy
        self.queue: Queue = records.setup_queue(timeout_seconds)

    def start_up(self) -> None:
        if self.database.is_sqlite:
            self.queue.release_abandoned(self.database)  # run again: a postdeploy started is failed, not rerun
        self.sweep()

    def sweep(self) -> None:
        with self.database.transaction() as session:
            records.wake_stranded(session)

    def run_one(self) -> bool:
        claimed = self.queue.claim_next(self.database)
        if claimed is not None:
            self.run(*claimed)
        return claimed is not None

    # -- one setup --------------------------------------------------------------------------

    def run(self, setup_id: str, attempts: int) -> None:
        with self.database.transaction() as session:
            setup = self._claimed(session, setup_id, attempts)
            if setup is None:
                return
            planned = self._after_build(session, setup)
        if planned is None:
            return
        lines: list[str] = []
        app_log = AppLog(self.database, planned.app_id, "postdeploy")

        def on_line(line: str) -> None:
            if sum(map(len, lines)) < MAX_OUTPUT_CHARS:
                lines.append(line)
            app_log.line(line)

        app_log.line(f"Running postdeploy: {planned.command}")
        try:
            result = self.postdeploy(planned, on_line)
        except Exception as exc:  # no sandbox here, the slug gone: the setup fails saying so
            log.exception("postdeploy of setup %s could not run", setup_id)
            result = PostdeployResult(-1, f"could not start: {exc}")
        app_log.line(f"postdeploy {result.description}")
        app_log.flush()
        with self.database.transaction() as session:
            setup = self._claimed(session, setup_id, attempts)
            if setup is None:
                return
            setup.postdeploy_output = "\n".join(lines)[:MAX_OUTPUT_CHARS]
            setup.postdeploy_exit_code = result.exit_code
            if result.exit_code == 0:
                self._succeed(setup)
            else:
                self._fail(session, setup, f"The postdeploy script {result.description}.", undo_deploy=False)

    def _claimed(self, session: Session, setup_id: str, attempts: int) -> AppSetup | None:
        setup = session.get(AppSetup, setup_id, with_for_update=True)
        if setup is None or setup.state != JobState.RUNNING or setup.attempts != attempts:
            return None  # another worker claimed it after this one's lease passed
        return setup

    def _after_build(self, session: Session, setup: AppSetup) -> PostdeployRun | None:
        """What the build's outcome calls for; the postdeploy to run (its stage committed first)."""
        if setup.stage == Stage.POSTDEPLOY:
            self._fail(session, setup, INTERRUPTED, undo_deploy=False)
            return None
        build = session.get(Build, setup.build_id) if setup.build_id else None
        status = records.builds.status_of(build) if build is not None else (setup.build_status or "failed")
        if status == "pending":  # woken before its build finished: wait again
            setup.state, setup.lease_until, setup.next_attempt_at = JobState.PENDING, None, WAITING
            return None
        setup.build_status = status
        if status == "failed":
            reason = (build.message if build is not None else None) or "its app was destroyed"
            self._fail(session, setup, f"The build failed: {reason}", undo_deploy=True)
            return None
        assert build is not None
        release = session.get(Release, build.release_id) if build.release_id else None
        if release is not None and release.status == ReleaseStatus.PENDING:  # its release phase runs
            setup.state, setup.lease_until = JobState.PENDING, None
            setup.next_attempt_at = utcnow() + timedelta(seconds=RELEASE_POLL_SECONDS)
            return None
        if release is None or release.status != ReleaseStatus.SUCCEEDED:
            self._fail(session, setup, "The build's release did not go live (its release phase failed or it "
                       "is gone); the release's output says why.", undo_deploy=True)
            return None
        if not setup.postdeploy_command:
            self._succeed(setup)
            return None
        slug = session.get(Slug, release.slug_id) if release.slug_id else None
        if slug is None or slug.checksum is None:
            self._fail(session, setup, "The release has no stored slug to run postdeploy from.", undo_deploy=False)
            return None
        setup.stage = Stage.POSTDEPLOY
        return PostdeployRun(setup.app_id, release.version, slug.checksum, releases.release_config(release),
                             setup.postdeploy_command)

    def _succeed(self, setup: AppSetup) -> None:
        setup.state, setup.stage, setup.lease_until, setup.message = JobState.DONE, Stage.FINISHED, None, None

    def _fail(self, session: Session, setup: AppSetup, message: str, *, undo_deploy: bool) -> None:
        app = session.get(App, setup.app_id)
        if setup.kind == Kind.SETUP and app is not None:
            apps.destroy_app(session, hooks_of(session), app)
            message += (f" The app {setup.app_name} was destroyed, so nothing of this setup is left; fix what "
                        "failed and create the setup again.")
        elif setup.kind == Kind.DEPLOY and app is not None and undo_deploy:
            owner = session.get(Account, setup.account_id)
            undo(session, self.settings, app, owner, Applied.from_json(setup.applied or {}))
            message += (" What app.json applied to the app (config vars, add-ons, buildpacks, formation) was "
                        "undone; it is applied again on the next deploy.")
        setup.state, setup.stage, setup.lease_until = JobState.FAILED, Stage.FINISHED, None
        setup.message = message[:1000]
