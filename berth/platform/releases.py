"""Releases: an immutable, numbered record of an app's config (and later slug)."""
from __future__ import annotations

import json

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from berth.accounts import UUID_PATTERN, Account
from berth.db import utcnow
from berth.errors import NotFound
from berth.platform.models import App, Release


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


def create_release(session: Session, app: App, user: Account | None, description: str, *,
                   config: dict[str, str], slug_id: str | None = None, app_locked: bool = False) -> Release:
    """Version = previous + 1, allocated under the app's lock (`app_locked`: the caller took it
    with `lock_app` in this transaction, before reading what the release builds on)."""
    if not app_locked:
        lock_app(session, app)
    session.flush()  # the app row must exist before it is updated
    now = utcnow()
    # One round trip stamps the app and reads the last version. Under the lock, and a statement
    # of its own after it, so PostgreSQL's READ COMMITTED snapshot sees every earlier release.
    last = session.execute(
        update(App).where(App.id == app.id).values(released_at=now, updated_at=now)
        .returning(select(func.max(Release.version)).where(Release.app_id == app.id).scalar_subquery())
        .execution_options(synchronize_session=False)).scalar_one() or 0
    set_committed_value(app, "released_at", now)
    set_committed_value(app, "updated_at", now)
    release = Release(app_id=app.id, version=last + 1, description=description,
                      status="succeeded", user_id=user.id if user else None,
                      config_snapshot=json.dumps(config, sort_keys=True), slug_id=slug_id)
    release.app, release.user = app, user
    session.add(release)
    session.flush()
    return release


def current_version(session: Session, app: App) -> int | None:
    return session.scalar(select(func.max(Release.version)).where(
        Release.app_id == app.id, Release.status == "succeeded"))


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
