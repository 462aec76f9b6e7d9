"""Releases: an immutable, numbered record of an app's config (and later slug)."""
from __future__ import annotations

import json

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.db import utcnow
from berth.errors import NotFound
from berth.platform.models import App, Release


def releases_query(app: App) -> Select[tuple[Release]]:
    return select(Release).where(Release.app_id == app.id)


def lock_app(session: Session, app: App) -> None:
    """Serialise changes to one app's config and releases (Postgres; SQLite's writer lock does it).

    Take it before reading the config a change builds on, or a concurrent change is lost.
    NO KEY UPDATE still lets other rows' foreign-key checks on the app proceed.
    """
    session.execute(select(App.id).where(App.id == app.id).with_for_update(key_share=True))


def create_release(session: Session, app: App, user: Account | None, description: str, *,
                   config: dict[str, str], slug_id: str | None = None) -> Release:
    """Version = previous + 1, allocated under the app's lock."""
    lock_app(session, app)
    last = session.scalar(select(func.max(Release.version))
                          .where(Release.app_id == app.id)) or 0
    release = Release(app_id=app.id, version=last + 1, description=description,
                             status="succeeded", user_id=user.id if user else None,
                             config_snapshot=json.dumps(config, sort_keys=True), slug_id=slug_id)
    release.app, release.user = app, user
    session.add(release)
    app.released_at = utcnow()
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
