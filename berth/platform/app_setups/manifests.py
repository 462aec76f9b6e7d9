"""The one code path that applies an app.json: a build calls `ManifestStep` after unpacking its source,
for the build of an app setup and for an app's first deploy alike.

Applying happens in one transaction (config vars, buildpacks, formation, add-on records), so a
manifest error leaves nothing behind. Add-ons are then provisioned by the worker; the build waits
for them before compiling, so their config vars are in the build's environment and in its release.
What was applied is recorded on the setup, so that the setup job can undo it if the deploy fails,
even after a builder died.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.accounts import Account
from berth.config import Settings
from berth.db import Database
from berth.errors import BerthError
from berth.hooks import ADDON_STATES, MANIFEST_ADDONS, REMOVE_ADDONS, hooks_of
from berth.jobs.queue import JobState
from berth.jobs.wakeup import nudge_workers
from berth.outbound import TargetPolicy
from berth.platform import config_vars, formation, releases
from berth.platform.app_manifest import MAX_MANIFEST_BYTES, Manifest, ManifestInvalid, parse_manifest
from berth.platform.app_setups.records import WAITING, Kind, Overrides, Stage, open_setup_of_app, setup_of_build
from berth.platform.buildpack_installations import list_installations, replace_installations
from berth.platform.models import App, AppSetup, Build, ConfigVar, Release

APP_JSON = "app.json"
ADDON_POLL_SECONDS = 0.5
Say = Callable[[str], None]


def read_manifest(source: Path) -> Manifest | None:
    """The source's app.json (None: it has none). Never follows a link: the source is the user's."""
    path = source / APP_JSON
    if path.is_symlink():
        raise ManifestInvalid(["app.json is a symbolic link; commit the file itself"])
    if not path.exists():
        return None
    if not path.is_file():
        raise ManifestInvalid(["app.json is not a file"])
    with path.open("rb") as manifest:
        return parse_manifest(manifest.read(MAX_MANIFEST_BYTES + 1))


def is_first_deploy(session: Session, app: App) -> bool:
    """No release of the app has carried code yet."""
    return session.scalar(select(Release.id).where(Release.app_id == app.id, Release.slug_id.is_not(None))
                          .limit(1)) is None


@dataclass
class Applied:
    """What a manifest changed on an app (stored on its setup, JSON)."""

    config_vars: list[str] = field(default_factory=list)
    addons: list[str] = field(default_factory=list)
    buildpacks_before: list[str] | None = None  # None: the app's buildpacks were left as they were
    formation: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> "Applied":
        return cls(**data)  # type: ignore[arg-type]


def _env_changes(manifest: Manifest, present: dict[str, str], overrides: Overrides) -> dict[str, str]:
    """The vars to set: an override always; else a manifest var the app has no value for yet."""
    changes = dict(overrides.env)
    for name, var in manifest.env.items():
        if name in changes or name in present:
            continue
        if var.value is not None:
            changes[name] = var.value
        elif var.generator is not None:
            changes[name] = secrets.token_hex(32)  # 64 hex characters, as Dokku makes them
    return {name: value for name, value in changes.items() if present.get(name) != value}


def apply_manifest(session: Session, settings: Settings, app: App, user: Account, manifest: Manifest,
                   overrides: Overrides, *, new_app: bool) -> Applied:
    """Env, then add-ons, then buildpacks and formation (Heroku's order), in the caller's transaction.
    ManifestInvalid lists what the app cannot take; the caller then rolls everything back."""
    releases.lock_app(session, app)
    present = {row.name: row.value for row in session.scalars(select(ConfigVar).where(ConfigVar.app_id == app.id))}
    missing = manifest.required_missing(present, overrides.env)
    if missing:
        raise ManifestInvalid(missing)
    applied = Applied()
    changes = _env_changes(manifest, present, overrides)
    if changes:
        try:
            config_vars.update_config(session, app, user, changes)
        except BerthError as exc:
            raise ManifestInvalid([f"env: {exc.message}"]) from None
        applied.config_vars = sorted(name for name in changes if name not in present)
    if manifest.addons:
        hooks = hooks_of(session)
        if not hooks.answers(MANIFEST_ADDONS):
            raise ManifestInvalid(["addons: this Berth has no add-on marketplace; remove the add-ons from app.json"])
        applied.addons = list(hooks.ask(MANIFEST_ADDONS, session, settings, app, user, manifest.addons))
    wanted = overrides.buildpacks or manifest.buildpacks
    before = [row.url for row in list_installations(session, app)]
    if wanted and (new_app or not before):
        try:
            replace_installations(session, app, wanted, TargetPolicy.from_settings(settings))
        except BerthError as exc:
            raise ManifestInvalid([f"buildpacks: {exc.message}"]) from None
        applied.buildpacks_before = before
    applied.formation = formation.set_missing(session, app, manifest.formation)
    return applied


def undo(session: Session, settings: Settings, app: App, user: Account | None, applied: Applied) -> None:
    """What `apply_manifest` did, undone (a deploy that failed leaves the app as it was before)."""
    if applied.addons:
        hooks_of(session).ask(REMOVE_ADDONS, session, applied.addons, user)
    rows = {row.name: row for row in session.scalars(select(ConfigVar).where(ConfigVar.app_id == app.id))}
    unset = {name: None for name in applied.config_vars if name in rows and rows[name].owner is None}
    if unset and user is not None:
        config_vars.update_config(session, app, user, unset)
    if applied.buildpacks_before is not None:
        replace_installations(session, app, applied.buildpacks_before, TargetPolicy.from_settings(settings))
    formation.remove(session, app, applied.formation)


class _Refused(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ManifestStep:
    """A build's app.json step: None when the build may go on, else the message it fails with."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database, self.settings = database, settings

    def run(self, build_id: str, source: Path, say: Say, deadline: float) -> str | None:
        with self.database.session(write=False) as session:
            build = session.get(Build, build_id)
            assert build is not None
            setup = setup_of_build(session, build_id)
            app = session.get(App, build.app_id)
            assert app is not None
            if setup is None and not is_first_deploy(session, app):
                return None
        try:
            manifest = read_manifest(source)
        except ManifestInvalid as exc:
            return self._refuse(build_id, exc.errors, say)
        if manifest is None and setup is None:
            return None
        say("-----> Applying app.json")
        try:
            with self.database.transaction() as session:
                addons = self._apply(session, build_id, manifest or Manifest(), say)
        except _Refused as exc:
            return self._refuse(build_id, exc.errors, say)
        if not addons:
            return None
        nudge_workers(self.settings.data_dir)
        failure = self._wait_for_addons(addons, say, deadline)
        if failure is not None:
            say(f" !     {failure}")
        return failure

    def _apply(self, session: Session, build_id: str, manifest: Manifest, say: Say) -> list[str]:
        build = session.get(Build, build_id)
        assert build is not None
        app = session.get(App, build.app_id)
        assert app is not None
        setup = setup_of_build(session, build_id)
        other = open_setup_of_app(session, app.id)
        if other is not None and other is not setup:
            raise _Refused(["app.json of an earlier deploy of this app is still being applied or undone; "
                            "push again in a minute"])
        overrides = Overrides.loads(setup.overrides) if setup is not None else Overrides()
        try:
            applied = apply_manifest(session, self.settings, app, build.user, manifest, overrides,
                                     new_app=setup is not None and setup.kind == Kind.SETUP)
        except ManifestInvalid as exc:
            raise _Refused(exc.errors) from None
        if setup is None:
            setup = AppSetup(kind=Kind.DEPLOY, account_id=build.user_id, app_id=app.id, app_name=app.name,
                             build_id=build.id, stage=Stage.BUILDING, manifest_errors=[],
                             state=JobState.PENDING, attempts=0, next_attempt_at=WAITING)
            session.add(setup)
        setup.applied = asdict(applied)
        setup.postdeploy_command = manifest.postdeploy
        setup.success_url = manifest.success_url
        session.flush()
        if applied.config_vars:
            say(f"       Set config vars {', '.join(applied.config_vars)}")
        if applied.buildpacks_before is not None:
            say(f"       Buildpacks: {', '.join(overrides.buildpacks or manifest.buildpacks)}")
        if applied.formation:
            say(f"       Formation: {', '.join(applied.formation)}")
        return applied.addons

    def _refuse(self, build_id: str, errors: list[str], say: Say) -> str:
        """Nothing was applied; the errors go to the output and the setup's manifest_errors."""
        for error in errors:
            say(f" !     app.json: {error}")
        with self.database.transaction() as session:
            setup = setup_of_build(session, build_id)
            if setup is not None:
                setup.manifest_errors = list(errors)
        return "app.json cannot be applied: " + "; ".join(errors)

    def _wait_for_addons(self, addon_ids: list[str], say: Say, deadline: float) -> str | None:
        say(f"-----> Provisioning {len(addon_ids)} add-on(s)")
        while True:
            with self.database.session(write=False) as session:
                states = hooks_of(session).ask(ADDON_STATES, session, addon_ids)
            failed = [message for state, message in states.values() if state not in ("provisioning", "provisioned")]
            if failed:
                return f"An add-on of app.json could not be provisioned: {failed[0]}"
            if all(state == "provisioned" for state, _message in states.values()) and len(states) == len(addon_ids):
                say("       Add-ons provisioned")
                return None
            if time.monotonic() > deadline:
                return ("The add-ons of app.json were still provisioning when the build's time limit came; "
                        "try the deploy again later.")
            time.sleep(ADDON_POLL_SECONDS)
