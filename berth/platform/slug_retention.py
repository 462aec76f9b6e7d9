"""Slug retention, as Heroku does it: a slug is kept while one of the app's newest 20 releases or
a release younger than 30 days uses it (and always the current release's); older slugs are deleted
and the releases that used them become `expired` (no rollback to them).

`sweep_slugs` is one round: the records change in one transaction, and only after it committed
are the blobs that no slug names any more deleted from the store. `SlugRetentionSweep` runs a
round hourly in the worker process.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from berth.db import Database, utcnow
from berth.platform.models import Release, ReleaseStatus, Slug
from berth.platform.slug_store import PresignedSlugUploads, SlugStore

KEEP_NEWEST_RELEASES = 20
KEEP_FOR = timedelta(days=30)
ORPHAN_GRACE = timedelta(days=1)
SWEEP_EVERY_SECONDS = 3600.0
log = logging.getLogger("berth.slug_retention")


@dataclass(frozen=True)
class Collected:
    slug_ids: list[str]
    checksums: list[str]  # of the deleted slugs: candidates for blob deletion once committed


def collect_slugs(session: Session, now: datetime | None = None, *, keep_newest: int = KEEP_NEWEST_RELEASES,
                  keep_for: timedelta = KEEP_FOR) -> Collected:
    """Delete the slug records retention no longer keeps; their releases become `expired`."""
    cutoff = (now or utcnow()) - keep_for
    old_slugs = session.execute(select(Slug.id, Slug.app_id, Slug.checksum).where(Slug.created_at < cutoff)).all()
    if not old_slugs:
        return Collected([], [])
    kept: set[str] = set()
    for app_id in sorted({app_id for _id, app_id, _checksum in old_slugs}):
        rows = session.execute(select(Release.slug_id, Release.created_at, Release.status)
                               .where(Release.app_id == app_id).order_by(Release.version.desc())).all()
        current = next((slug_id for slug_id, _at, status in rows if status == ReleaseStatus.SUCCEEDED), None)
        kept.update(slug_id for index, (slug_id, created_at, _status) in enumerate(rows)
                    if slug_id and (index < keep_newest or created_at >= cutoff))
        if current:
            kept.add(current)
    doomed = [(slug_id, checksum) for slug_id, _app_id, checksum in old_slugs if slug_id not in kept]
    if not doomed:
        return Collected([], [])
    ids = [slug_id for slug_id, _checksum in doomed]
    session.execute(update(Release).where(Release.slug_id.in_(ids))
                    .values(status=ReleaseStatus.EXPIRED, slug_id=None, updated_at=now or utcnow()))
    for slug in session.scalars(select(Slug).where(Slug.id.in_(ids))):
        session.delete(slug)
    session.flush()
    return Collected(ids, sorted({checksum for _id, checksum in doomed if checksum}))


def delete_unreferenced_blobs(session: Session, store: SlugStore, checksums: list[str]) -> list[str]:
    """Delete the blobs among `checksums` that no slug record names (content-addressed blobs may
    be shared by several slugs); the ones deleted."""
    if not checksums:
        return []
    still_used = set(session.scalars(select(Slug.checksum).where(Slug.checksum.in_(checksums))))
    deleted = [checksum for checksum in checksums if checksum not in still_used]
    for checksum in deleted:
        store.delete(checksum)
    return deleted


def orphan_blobs(session: Session, store: SlugStore, stored_before: datetime) -> list[str]:
    """Blobs stored before `stored_before` that no slug names (their app was destroyed, or an
    upload's record never committed). Younger ones may be an upload or build about to record them."""
    old = [checksum for checksum, stored_at in store.stored() if stored_at < stored_before]
    named: set[str] = set()
    for start in range(0, len(old), 500):
        named.update(session.scalars(select(Slug.checksum).where(Slug.checksum.in_(old[start:start + 500]))))
    return [checksum for checksum in old if checksum not in named]


def sweep_slugs(database: Database, store: SlugStore, now: datetime | None = None) -> Collected:
    """One retention round: records in one transaction, then the blobs, after it committed; then
    blobs left by destroyed apps (stored more than ORPHAN_GRACE ago, named by no slug)."""
    now = now or utcnow()
    with database.transaction() as session:
        collected = collect_slugs(session, now)
    with database.transaction() as session:
        delete_unreferenced_blobs(session, store, collected.checksums)
        orphans = orphan_blobs(session, store, now - ORPHAN_GRACE)
    for checksum in orphans:
        store.delete(checksum)
    if isinstance(store, PresignedSlugUploads):
        store.collect_leftovers(now - ORPHAN_GRACE)
    return collected


class SlugRetentionSweep:
    """Retention as a worker's periodic housekeeping (berth.jobs.worker.JobType with no jobs of
    its own): `sweep_slugs` once when the worker starts, then every `every` seconds. Several
    workers (PostgreSQL) may each sweep: a round's changes are one transaction, and a slug another
    round deleted first is simply not found again."""

    name = "slug-retention"

    def __init__(self, database: Database, store: SlugStore, *, every: float = SWEEP_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.database, self.store, self.every, self.clock = database, store, every, clock
        self.last_round: float | None = None

    def start_up(self) -> None:
        pass

    def sweep(self) -> None:
        """Called every few seconds by the worker's main thread; sweeps when a round is due."""
        now = self.clock()
        if self.last_round is not None and now - self.last_round < self.every:
            return
        self.last_round = now
        try:
            collected = sweep_slugs(self.database, self.store)
        except Exception:  # the worker goes on; the next round tries again
            log.exception("the slug retention sweep failed; it runs again in %d s", self.every)
            return
        if collected.slug_ids:
            log.info("slug retention: collected %d slugs; their releases expired", len(collected.slug_ids))

    def anything_due(self) -> bool:
        return False

    def count_due(self, limit: int) -> int:
        return 0

    def run_one(self) -> bool:
        return False
