"""Builds as a job type: claim one, fetch and unpack its source, compile it with the app's
buildpacks in the sandbox, pack and store the slug, and cut the release "Deploy <version>".

Everything slow happens outside any transaction, between the claim (its own statement) and the
short transaction that records the outcome. A failed build records nothing but its status and
message: the app's live release stays as it was. Its output goes to the build's output file as
it is made (berth.platform.builds.output), the last line written before the final status.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select

from berth.config import Settings
from berth.db import Database
from berth.jobs.queue import JobState
from berth.jobs.run_once import RunOnceJobs
from berth.jobs.wakeup import nudge_workers, signal_waiters
from berth.platform import deploys
from berth.platform.app_setups import records as setups
from berth.platform.app_setups.manifests import ManifestStep
from berth.platform.buildpack_installations import list_installations
from berth.platform.buildpack_runner import BuildFailed, BuildpackRunner
from berth.platform.builds import records
from berth.platform.builds.output import OutputWriter
from berth.platform.models import App, Build, ConfigVar
from berth.platform.slug_store import SlugStore
from berth.platform.slugs import SlugError, apply_slugignore, pack
from berth.platform.sources import SourceError, SourceFetcher, extract, limits_from

log = logging.getLogger("berth.builder")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class Claimed:
    build_id: str
    attempts: int


@dataclass(frozen=True)
class Plan:
    """What a build needs, copied out of the database before the slow part."""

    app_id: str
    app_name: str
    user_id: str
    source_url: str
    checksum: str | None
    version: str | None
    buildpacks: list[str]
    config: dict[str, str]
    stack: str


def cache_dir(data_dir: Path, app_id: str) -> Path:
    """The app's build cache (CACHE_DIR): kept between its builds, emptied by DELETE build-cache."""
    return data_dir / "build-cache" / app_id


def work_dir(data_dir: Path, build_id: str) -> Path:
    return data_dir / "builds" / "work" / build_id


def release_description(version: str | None, build_id: str) -> str:
    if version and _SHA.match(version.lower()):
        return f"Deploy {version[:7]}"
    if version:
        return f"Deploy {version[:100]}"
    return f"Deploy build {build_id[:8]}"


class BuildJobs(RunOnceJobs):
    """The job type of `builds` (berth.jobs.worker.JobType), run by the builder process."""

    name = "builds"

    def __init__(self, database: Database, settings: Settings, runner: Callable[[], BuildpackRunner],
                 store: SlugStore, *, timeout_seconds: float = records.DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(database, records.build_queue(timeout_seconds))
        self.settings, self.store = settings, store
        self.runner = runner  # made on first use: a builder without a stack still fails builds clearly

    def run_claimed(self, job_id: str, attempts: int) -> None:
        self.run(Claimed(job_id, attempts))

    def fail_claimed_again(self, job_id: str, attempts: int) -> None:
        self._finish(Claimed(job_id, attempts), Outcome(failed=True, message=records.KILLED_MESSAGE))

    # -- one build ----------------------------------------------------------------------------

    def run(self, claimed: Claimed) -> None:
        output = OutputWriter(self.settings.data_dir, claimed.build_id)
        try:
            outcome = self._build(claimed, output.line)
        except Exception:  # never leave a build running: it fails, and the operator's log says why
            log.exception("build %s failed unexpectedly", claimed.build_id)
            output.line(" !     The build failed because of an error in Berth; the operator's log has details.")
            outcome = Outcome(failed=True, message="The build failed because of an error in Berth.")
        finally:
            output.close()
        self._finish(claimed, outcome)

    def _build(self, claimed: Claimed, say: Callable[[str], None]) -> "Outcome":
        plan = self._plan(claimed.build_id)
        work = work_dir(self.settings.data_dir, claimed.build_id)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, mode=0o700)
        try:
            return self._build_in(claimed, plan, work, say)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _build_in(self, claimed: Claimed, plan: Plan, work: Path, say: Callable[[str], None]) -> "Outcome":
        deadline = time.monotonic() + self.settings.build_timeout_seconds
        say(f"-----> Building on the {plan.stack} stack")
        try:
            tarball = SourceFetcher.from_settings(self.settings).fetch(
                plan.source_url, plan.checksum, account_id=plan.user_id, dest=work / "source.tgz")
            source = extract(tarball, work / "app", limits_from(self.settings))
            tarball.unlink()
        except SourceError as exc:
            return self._failed(say, f"The source could not be used: {exc}")
        refused = ManifestStep(self.database, self.settings).run(claimed.build_id, source, say, deadline)
        if refused is not None:
            return self._failed(say, refused, echoed=True)
        plan = self._plan(claimed.build_id)  # app.json may have set config vars, buildpacks, add-ons
        ignored = apply_slugignore(source)
        for warning in ignored.warnings:
            say(f" !     {warning}")
        if ignored.removed:
            say(f"-----> Removed {len(ignored.removed)} path(s) named in .slugignore")
        try:
            runner = self.runner()
        except Exception as exc:  # no stack built, a bad BERTH_BUILD_CA_BUNDLE: the operator's to fix
            log.exception("the buildpack runner could not be set up")
            return self._failed(say, f"Berth cannot run builds here: {exc}. Ask the operator to fix the builder.")
        try:
            result = runner.compile(source, cache_dir(self.settings.data_dir, plan.app_id), plan.config,
                                    plan.buildpacks, say)
        except BuildFailed as exc:
            return self._failed(say, str(exc).splitlines()[0] if str(exc) else "Build failed.", echoed=True)
        say("-----> Compressing...")
        try:
            packed = pack(result.app_dir, work / "slug.tgz", hard_limit=self.settings.slug_max_bytes)
        except SlugError as exc:
            return self._failed(say, str(exc))
        for warning in packed.warnings:
            say(f" !     {warning}")
        say(f"       Done: {packed.size / (1024 * 1024):.1f}M")
        try:
            checksum = self.store.put(packed.path, packed.checksum)
        except SlugError as exc:  # the S3 store down or refusing: the build says so, nothing is released
            return self._failed(say, f"The slug could not be stored: {exc}")
        return Outcome(failed=False, message=None, checksum=checksum, size=packed.size,
                       process_types=result.process_types,
                       buildpack_provided_description=result.buildpack_provided_description)

    @staticmethod
    def _failed(say: Callable[[str], None], message: str, *, echoed: bool = False) -> "Outcome":
        if not echoed:
            for line in message.splitlines():
                say(f" !     {line}")
        say(" !     Build failed: nothing was released; the app keeps running its current release.")
        return Outcome(failed=True, message=message[:1000])

    def _plan(self, build_id: str) -> Plan:
        with self.database.session(write=False) as session:
            build = session.get(Build, build_id)
            assert build is not None
            app = session.get(App, build.app_id)
            assert app is not None
            config = {row.name: row.value for row in session.scalars(
                select(ConfigVar).where(ConfigVar.app_id == app.id))}
            installed = build.buildpacks or [row.url for row in list_installations(session, app)]
            return Plan(app.id, app.name, build.user_id, build.source_url, build.source_checksum,
                        build.source_version, list(installed), config, build.stack)

    def _finish(self, claimed: Claimed, outcome: "Outcome") -> None:
        """Record the outcome (and, for a success, the slug and the release) in one transaction, while
        the claim is still ours; then the final line, and followers are woken."""
        output = OutputWriter(self.settings.data_dir, claimed.build_id)
        try:
            with self.database.transaction() as session:
                build = session.get(Build, claimed.build_id)
                if build is None or build.state != JobState.RUNNING or build.attempts != claimed.attempts:
                    log.warning("build %s is no longer this builder's; its outcome is dropped", claimed.build_id)
                    return
                if not outcome.failed:
                    version = self._release(session, build, outcome)
                    output.line(f"-----> Launching...\n       Released v{version}")
                build.state = JobState.FAILED if outcome.failed else JobState.DONE
                build.lease_until, build.message = None, outcome.message
                setups.build_finished(session, build)
        finally:
            output.close()
            signal_waiters(self.settings.data_dir, claimed.build_id)
            nudge_workers(self.settings.data_dir)  # an app setup waiting for this build

    def _release(self, session: Any, build: Build, outcome: "Outcome") -> int:
        app = session.get(App, build.app_id)
        assert app is not None and outcome.checksum is not None and outcome.size is not None
        slug = deploys.record_built_slug(
            session, app, checksum=outcome.checksum, size=outcome.size, process_types=outcome.process_types or {},
            commit=build.source_version, buildpack_provided_description=outcome.buildpack_provided_description)
        release = deploys.release_slug(session, self.store, app, build.user, slug.id,
                                       release_description(build.source_version, build.id))
        build.slug_id, build.release_id = slug.id, release.id
        return release.version

    def fail_abandoned(self, *, all_running: bool) -> None:
        """A build a dead builder left running is failed, with a line in its output."""
        failed = records.fail_abandoned(self.database, all_running=all_running)
        for build_id in failed:
            output = OutputWriter(self.settings.data_dir, build_id)
            output.line(f" !     {records.KILLED_MESSAGE}")
            output.close()
            signal_waiters(self.settings.data_dir, build_id)
        if failed:
            log.info("failed %d builds a stopped builder left running", len(failed))


@dataclass(frozen=True)
class Outcome:
    failed: bool
    message: str | None
    checksum: str | None = None
    size: int | None = None
    process_types: dict[str, str] | None = None
    buildpack_provided_description: str | None = None
