"""What a destroyed app leaves on disk goes with it: its bare git repository, its build cache,
its builds' output files and work directories, its release phases' output, and the slug blobs no
other app's slug names.

An APP_DESTROYING listener notes what belongs to the app inside the destroying transaction and
removes the files only once that transaction committed (a destroy that rolls back keeps them).
The slug blobs are checked against the slugs left after the commit: blobs are content-addressed,
so another app released from the same tarball shares one.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from berth.config import Settings
from berth.db import Database
from berth.hooks import APP_DESTROYING, Hooks
from berth.platform.builds.job import cache_dir, work_dir
from berth.platform.builds.output import output_path
from berth.platform.git.repositories import remove_repository
from berth.platform.models import AppSetup, Build, ReleasePhase, Slug
from berth.platform.release_phase.records import OUTPUT_KIND as RELEASE_OUTPUT
from berth.platform.slug_retention import delete_unreferenced_blobs
from berth.platform.slug_store import SlugStore, slug_store_of

__all__ = ["remove_app_files", "cleaner", "register_cleaner"]

log = logging.getLogger(__name__)


def remove_app_files(database: Database, store: SlugStore, data_dir: Path, app_id: str,
                     build_ids: list[str], checksums: list[str], release_phase_ids: tuple[str, ...] = ()) -> None:
    """Remove a destroyed app's files (its records are gone already)."""
    remove_repository(data_dir, app_id)
    shutil.rmtree(cache_dir(data_dir, app_id), ignore_errors=True)
    for build_id in build_ids:
        output_path(data_dir, build_id).unlink(missing_ok=True)
        shutil.rmtree(work_dir(data_dir, build_id), ignore_errors=True)
    for phase_id in release_phase_ids:
        output_path(data_dir, phase_id, RELEASE_OUTPUT).unlink(missing_ok=True)
    with database.transaction() as session:
        delete_unreferenced_blobs(session, store, checksums)


def cleaner(database: Database, store: SlugStore, data_dir: Path) -> Callable[..., None]:
    """The APP_DESTROYING listener create_app registers."""
    def on_app_destroying(session: Session, app: Any, **_: Any) -> None:
        app_id = app.id
        # A build an app setup names keeps its output: the setup outlives the app it made, and its
        # build's output is how it says why it failed.
        named_by_setups = select(AppSetup.build_id).where(AppSetup.build_id.is_not(None))
        build_ids = list(session.scalars(select(Build.id).where(Build.app_id == app_id,
                                                                Build.id.not_in(named_by_setups))))
        phase_ids = tuple(session.scalars(select(ReleasePhase.id).where(ReleasePhase.app_id == app_id)))
        checksums = sorted({checksum for checksum in session.scalars(
            select(Slug.checksum).where(Slug.app_id == app_id)) if checksum})

        def after_commit(_session: Session) -> None:
            try:
                remove_app_files(database, store, data_dir, app_id, build_ids, checksums, phase_ids)
            except Exception:  # the app is gone either way; the slug sweep collects leftover blobs
                log.exception("could not remove every file of destroyed app %s", app_id)

        event.listen(session, "after_commit", after_commit, once=True)
    return on_app_destroying


def register_cleaner(hooks: Hooks, database: Database, settings: Settings) -> None:
    """Every process that may destroy an app (the web process; the worker, when a failed app
    setup destroys the app it made) removes its files the same way."""
    hooks.register(APP_DESTROYING, cleaner(database, slug_store_of(settings), settings.data_dir))
