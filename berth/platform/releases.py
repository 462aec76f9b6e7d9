"""Releases: an immutable, numbered record of an app's config and slug; each one cut is announced
(`RELEASE_CREATED`), so that whatever runs the app can roll to it."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, Select, String, Update, bindparam, func, insert, literal_column, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from berth.accounts import UUID_PATTERN, Account
from berth.db import EncryptedText, PreparedByCount, UTCDateTime, new_id, returned, utcnow
from berth.errors import NotFound
from berth.hooks import RELEASE_CREATED, hooks_of
from berth.platform.models import App, Release, ReleaseStatus
from berth.platform.release_phase import records as release_phase


def releases_query(app: App) -> Select[tuple[Release]]:
    return select(Release).where(Release.app_id == app.id)


def lock_app(session: Session, app: App) -> None:
    """Serialise changes to one app's config and releases (Postgres; SQLite's writer lock does it).

    Take it before reading the config a change builds on, or a concurrent change is lost.
    NO KEY UPDATE still lets other rows' foreign-key checks on the app proceed. SQLite has no row
    locks (it would run a plain SELECT): a writer there holds the whole database from BEGIN IMMEDIATE.
    """
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(select(App.id).where(App.id == app.id).with_for_update(key_share=True))


def locking_apps(app_ids: Select[tuple[str]]) -> ColumnElement[int]:
    """`lock_app` for the apps `app_ids` selects, as an expression another statement can carry
    (in its RETURNING, say): PostgreSQL locks them in id order, so two workers never wait on each
    other crosswise; SQLite, which has no row locks, just counts them."""
    locked = select(App.id).where(App.id.in_(app_ids)).order_by(App.id).with_for_update(key_share=True)
    return select(func.count()).select_from(locked.subquery()).scalar_subquery()


def stamp_apps(count: int, *returning: ColumnElement[object]) -> Update:
    """The apps about to be released (parameters `now`, `app_0`…): `released_at` stamped, and
    each app's id, name and last version returned (with `returning`). Under the apps' lock and
    a statement of its own after it, so PostgreSQL's READ COMMITTED snapshot of its RETURNING sees
    every earlier release."""
    last = select(func.max(Release.version)).where(Release.app_id == App.id).scalar_subquery()
    now = bindparam("now", type_=UTCDateTime())
    return (update(App).where(App.id.in_([bindparam(f"app_{i}") for i in range(count)]))
            .values(released_at=now, updated_at=now)
            .returning(App.id, App.name, returned(last), *(returned(column) for column in returning)))


@dataclass(frozen=True)
class NewRelease:
    app_id: str
    version: int  # the last one + 1, read under the app's lock (`stamp_apps`)
    description: str
    config: dict[str, str]
    user_id: str | None = None
    slug_id: str | None = None  # None: the app's code stays what it is (the current release's slug)
    # Its status unless a release phase runs for it (then pending until it ends); tests record history with it.
    status: ReleaseStatus = ReleaseStatus.SUCCEEDED
    # False only for an add-on changing its own config vars: no release phase, succeeded at once (§5.2).
    runs_release_phase: bool = True


@dataclass(frozen=True)
class CreatedRelease:
    """What RELEASE_CREATED tells its listeners about each release cut."""

    id: str
    app_id: str
    version: int
    status: ReleaseStatus
    slug_id: str | None


def _current_slug(app_id: object) -> object:
    """The slug of the app's newest release that has one and is live or about to be (succeeded or
    pending): what a release cut without new code (a config change, an add-on) carries, so that
    every release names the code it runs, and a config change made while a deploy's release phase
    runs keeps that deploy's code rather than undo it once both succeed."""
    # Literals: an anonymous parameter would be named like the INSERT's own status_<i>.
    live = [literal_column(f"'{status.value}'") for status in (ReleaseStatus.SUCCEEDED, ReleaseStatus.PENDING)]
    return (select(Release.slug_id).where(Release.app_id == app_id, Release.status.in_(live),
                                          Release.slug_id.is_not(None))
            .order_by(Release.version.desc()).limit(1).scalar_subquery())


def _insert_releases(count: int) -> object:
    def row(i: int) -> dict[str, object]:
        return {"id": bindparam(f"id_{i}"), "app_id": bindparam(f"app_id_{i}"),
                "version": bindparam(f"version_{i}"), "description": bindparam(f"description_{i}"),
                "status": bindparam(f"status_{i}"), "user_id": bindparam(f"user_id_{i}"),
                "config_snapshot": bindparam(f"config_{i}", type_=EncryptedText()),
                "slug_id": func.coalesce(bindparam(f"slug_id_{i}", type_=String()),
                                         _current_slug(bindparam(f"app_id_{i}"))),
                "created_at": bindparam("now", type_=UTCDateTime()),
                "updated_at": bindparam("now", type_=UTCDateTime())}
    table = Release.__table__
    return insert(table).values([row(i) for i in range(count)]).returning(table.c.id, table.c.slug_id)


_INSERT_RELEASES = PreparedByCount(_insert_releases)  # type: ignore[arg-type]
_STAMP = PreparedByCount(stamp_apps)


def create_releases(session: Session, new: list[NewRelease], now: datetime) -> list[CreatedRelease]:
    """The one place releases are made: every new release in one statement; those whose slug has a
    `release` command made pending, their release phase queued (berth.platform.release_phase); then announced
    (RELEASE_CREATED, in this transaction: a listener's failure undoes the change). The caller
    stamped their apps with `stamp_apps` (under their lock), which gave it their last versions."""
    params: dict[str, object] = {"now": now}
    created = [CreatedRelease(new_id(), release.app_id, release.version, release.status, release.slug_id)
               for release in new]
    for i, (release, made) in enumerate(zip(new, created)):
        params.update({f"id_{i}": made.id, f"app_id_{i}": release.app_id, f"version_{i}": release.version,
                       f"description_{i}": release.description, f"status_{i}": made.status,
                       f"user_id_{i}": release.user_id, f"config_{i}": json.dumps(release.config, sort_keys=True),
                       f"slug_id_{i}": release.slug_id})
    slugs = dict(_INSERT_RELEASES[len(new)].run_in(session, params))
    created = [replace(made, slug_id=slugs.get(made.id)) for made in created]
    candidates = [release_phase.Candidate(made.id, made.app_id, made.slug_id)
                  for release, made in zip(new, created) if release.runs_release_phase and made.slug_id]
    pending = release_phase.schedule(session, candidates, now) if candidates else set()
    created = [replace(made, status=ReleaseStatus.PENDING) if made.id in pending else made for made in created]
    hooks_of(session).fire(RELEASE_CREATED, session=session, releases=created)
    return created


def create_release(session: Session, app: App, user: Account | None, description: str, *,
                   config: dict[str, str], slug_id: str | None = None, app_locked: bool = False) -> int:
    """One release of `app`; its version. Version = previous + 1, allocated under the app's lock
    (`app_locked`: the caller took it with `lock_app` in this transaction, before reading what
    the release builds on)."""
    if not app_locked:
        lock_app(session, app)
    session.flush()  # the app row must exist before it is updated
    now = utcnow()
    [(_id, _name, last)] = _STAMP[1].run_in(session, {"now": now, "app_0": app.id})
    version = (last or 0) + 1
    create_releases(session, [NewRelease(app.id, version, description, config, user.id if user else None,
                                         slug_id)], now)
    set_committed_value(app, "released_at", now)
    set_committed_value(app, "updated_at", now)
    return version


def current_version(session: Session, app: App) -> int | None:
    return session.scalar(select(func.max(Release.version)).where(
        Release.app_id == app.id, Release.status == ReleaseStatus.SUCCEEDED))


def get_release(session: Session, app: App, ref: str) -> Release:
    """By UUID or version number (`v12` or `12`)."""
    query = releases_query(app)
    version = ref[1:] if ref[:1] in ("v", "V") else ref
    if UUID_PATTERN.match(ref):
        query = query.where(Release.id == ref.lower())
    elif version.isdigit() and int(version) < 2**31:
        query = query.where(Release.version == int(version))
    else:
        query = None  # type: ignore[assignment]
    release = session.scalar(query) if query is not None else None
    if release is None:
        raise NotFound("Couldn't find that release.", resource="release")
    return release


def release_config(release: Release) -> dict[str, str]:
    return json.loads(release.config_snapshot)
