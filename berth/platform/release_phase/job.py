"""Release phases as a job type, run by the builder (it has the stack, the sandbox and the slugs,
and a release command may run for an hour, which the provisioning worker must never wait behind).

A claimed phase runs its slug's `release` command as the one-off dyno `release.N` (release_phase.dyno:
listed while it runs, stopped on request), with the release's config; its output goes to its
output file (followed by the release's output_stream_url and a git push) and to the app's log
stream. Exit 0 makes the release succeeded (and current, announced by RELEASE_CURRENT, unless a
newer one is current already); anything else, a stop included, fails it and the previous release
stays current.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from berth.config import Settings
from berth.db import Database
from berth.hooks import RELEASE_CURRENT, hooks_of
from berth.jobs.queue import JobState, finish
from berth.jobs.run_once import RunOnceJobs
from berth.jobs.wakeup import signal_waiters
from berth.platform import releases
from berth.platform.builds.output import OutputWriter
from berth.platform.models import App, Release, ReleasePhase, ReleaseStatus, Slug
from berth.platform.one_off import STOP_GRACE_SECONDS, OneOffRun
from berth.platform.release_phase import dyno as release_dyno
from berth.platform.release_phase import records
from berth.platform.logs.app_log import AppLog
from berth.platform.slug_runs import RunResult, SlugRunner
from berth.platform.slug_store import SlugStore
from berth.platform.slugs import SlugError

log = logging.getLogger("berth.builder")
FIX_AND_DEPLOY = "fix the release command (its output is above) and deploy again"
RUN_AGAIN = "deploy again, or roll back, to run the release command again"


@dataclass(frozen=True)
class Plan:
    """What a run needs, copied out of the database before the slow part."""

    app_id: str
    version: int
    number: int  # of its dyno, release.N
    dyno: str
    command: str
    checksum: str | None
    config: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    message: str
    ended: str | None = None  # how the process ended (RunResult.describe), when it ran
    exit_code: int | None = None
    crashed: bool = False  # its dyno's end state: crashed (it never ran, or ran out of time) or down


class ReleasePhaseJobs(RunOnceJobs):
    """The job type of `release_phases` (berth.jobs.worker.JobType)."""

    name = "release_phases"

    def __init__(self, database: Database, settings: Settings, store: SlugStore, *, stack: Path | None = None,
                 timeout_seconds: float = records.DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(database, records.release_phase_queue(timeout_seconds))
        self.settings, self.timeout_seconds = settings, timeout_seconds
        # Its own scratch directory, so that the only runner starting may empty it (see start_up).
        self.scratch = settings.data_dir / "runs" / "release-phase"
        self.runner = SlugRunner(store, self.scratch, stack=stack)

    def start_up(self) -> None:
        """Also removes what a killed runner left unpacked, when this is the only runner (SQLite):
        with several (PostgreSQL) another one's run may be in there."""
        if self.database.is_sqlite and self.scratch.is_dir():
            for leftover in self.scratch.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
        super().start_up()

    def run_claimed(self, job_id: str, attempts: int) -> None:
        self.run(job_id, attempts)

    def fail_claimed_again(self, job_id: str, attempts: int) -> None:
        self._finish(job_id, attempts, Outcome(False, records.KILLED_MESSAGE, records.ENDED_WITH_BUILDER, crashed=True))

    # -- one run ------------------------------------------------------------------------------

    def run(self, phase_id: str, attempts: int) -> None:
        plan = self._plan(phase_id)
        output = OutputWriter(self.settings.data_dir, phase_id, records.OUTPUT_KIND)
        app_log = AppLog(self.database, plan.app_id, plan.dyno)

        def say(line: str) -> None:
            output.line(line)
            app_log.line(line)

        try:
            outcome = self._run(plan, say, app_log)
        except Exception:  # never leave a release pending: it fails, and the operator's log says why
            log.exception("release phase %s failed unexpectedly", phase_id)
            outcome = Outcome(False, f"Release v{plan.version} failed because of an error in Berth; the "
                                     "operator's log has details. The app keeps running its previous release.",
                              crashed=True)
            say(f" !     {outcome.message}")
        app_log.flush()
        try:
            self._finish(phase_id, attempts, outcome, output)
        finally:
            output.close()

    def _run(self, plan: Plan, say: Callable[[str], None], app_log: AppLog) -> Outcome:
        with self.database.transaction() as session:
            start = release_dyno.start(session, plan.app_id, plan.number)
        if start.stopped_by is not None:
            return self._failed(plan, say, f"{plan.dyno} was {start.stopped_by} before it started", RUN_AGAIN)
        heroku = lambda line: app_log.line(line, source="heroku")  # noqa: E731
        heroku(f"Starting process with command `{plan.command}`")
        if plan.checksum is None:
            return self._failed(plan, say, "its slug is no longer stored", crashed=True)
        run = OneOffRun(self.runner, plan.checksum, plan.command, plan.dyno, plan.config,
                        time_to_live=self.timeout_seconds, memory_limit=release_dyno.SIZE.memory_bytes,
                        process_limit=release_dyno.SIZE.process_limit,
                        on_up=lambda: heroku("State changed from starting to up"))
        stopped_by: list[str] = []

        def stop(who: str) -> None:
            stopped_by.append(who)
            heroku("Stopping all processes with SIGTERM")
            run.stop(STOP_GRACE_SECONDS)

        try:
            with release_dyno.StopWatch(self.database, self.settings.data_dir, start.dyno_id, stop):
                result = run.run_detached(say)
        except SlugError as exc:
            return self._failed(plan, say, f"its slug cannot be used ({exc})", crashed=True)
        if stopped_by and not result.succeeded:  # a command that finished first succeeded all the same
            ended = f"exited with status {result.exit_code}"  # what Heroku says of a stopped dyno
            heroku(f"Process {ended}")
            heroku("State changed from up to down")
            return self._failed(plan, say, f"{plan.dyno} was {stopped_by[0]} ({ended})", RUN_AGAIN,
                                ended=ended, exit_code=result.exit_code)
        heroku(f"Process {result.describe()}")
        heroku(f"State changed from up to {'crashed' if result.timed_out else 'complete'}")  # Heroku's words
        if result.succeeded:
            return Outcome(True, f"The release command {result.describe()}.", result.describe(), result.exit_code)
        return self._failed(plan, say, self._why(result), ended=result.describe(), exit_code=result.exit_code,
                            crashed=result.timed_out)

    def _why(self, result: RunResult) -> str:
        if result.timed_out:
            limit = self.timeout_seconds
            shown = f"{limit / 60:g} minutes" if limit >= 120 else f"{limit:g} seconds"
            return f"the release command ran longer than its time limit ({shown}) and was stopped"
        return f"the release command {result.describe()}"

    @staticmethod
    def _failed(plan: Plan, say: Callable[[str], None], why: str, advice: str = FIX_AND_DEPLOY, *,
                ended: str | None = None, exit_code: int | None = None, crashed: bool = False) -> Outcome:
        message = f"Release v{plan.version} failed: {why}. The app keeps running its previous release; {advice}."
        say(f" !     {message}")
        return Outcome(False, message, ended, exit_code, crashed)

    def _plan(self, phase_id: str) -> Plan:
        with self.database.session(write=False) as session:
            phase = session.get(ReleasePhase, phase_id)
            assert phase is not None
            release = session.get(Release, phase.release_id)
            assert release is not None
            slug = session.get(Slug, release.slug_id) if release.slug_id else None
            return Plan(phase.app_id, release.version, phase.number, phase.dyno, phase.command,
                        slug.checksum if slug is not None else None, releases.release_config(release))

    def _finish(self, phase_id: str, attempts: int, outcome: Outcome, output: OutputWriter | None = None) -> None:
        """Record the outcome on the phase and its release in one transaction, while the claim is
        still ours; a release that became current is announced; followers are woken."""
        try:
            with self.database.transaction() as session:
                phase = session.get(ReleasePhase, phase_id)
                if phase is None or phase.state != JobState.RUNNING or phase.attempts != attempts:
                    log.warning("release phase %s is no longer this builder's; its outcome is dropped", phase_id)
                    return
                release = session.get(Release, phase.release_id)
                app = session.get(App, phase.app_id)
                assert release is not None and app is not None
                releases.lock_app(session, app)
                release.status = ReleaseStatus.SUCCEEDED if outcome.succeeded else ReleaseStatus.FAILED
                finish(phase, message=outcome.message[:1000], failed=not outcome.succeeded)
                release_dyno.end(session, [(phase.app_id, phase.number)], exit_code=outcome.exit_code,
                                 why=outcome.ended or outcome.message, crashed=outcome.crashed)
                session.flush()
                if outcome.succeeded and releases.current_version(session, app) == release.version:
                    hooks_of(session).fire(RELEASE_CURRENT, session=session, release=releases.CreatedRelease(
                        release.id, app.id, release.version, ReleaseStatus.SUCCEEDED, release.slug_id))
                if output is not None and outcome.succeeded:  # before the commit: followers stop after it
                    output.line(f"Release v{release.version} succeeded.")
        finally:
            signal_waiters(self.settings.data_dir, phase_id)

    def fail_abandoned(self, *, all_running: bool) -> None:
        """A phase a dead builder left running fails with its release, with a line in its output."""
        failed = records.fail_abandoned(self.database, all_running=all_running)
        for phase_id in failed:
            output = OutputWriter(self.settings.data_dir, phase_id, records.OUTPUT_KIND)
            output.line(f" !     {records.KILLED_MESSAGE}")
            output.close()
            signal_waiters(self.settings.data_dir, phase_id)
        if failed:
            log.info("failed %d release phases a stopped builder left running", len(failed))
