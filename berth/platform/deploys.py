"""Slug records and the releases that carry code: a slug made through the API and its upload,
releasing a slug with the current config, and rollback (the old slug and config as a new release)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.errors import Conflict, InvalidParams, NotFound
from berth.platform import releases
from berth.platform.models import App, ConfigVar, Release, ReleaseStatus, Slug
from berth.platform.slug_store import PresignedSlugUploads, SlugStore, StorageUnavailable
from berth.platform.slugs import SlugError, normalise_checksum

SLUG_NOT_FOUND = "Couldn't find that slug."


def create_slug(session: Session, app: App, *, process_types: dict[str, str], stack: str | None = None,
                checksum: str | None = None, commit: str | None = None, commit_description: str | None = None,
                buildpack_provided_description: str | None = None) -> Slug:
    """A slug record awaiting its blob (`size` stays None until the upload is stored)."""
    slug = Slug(app_id=app.id, process_types=dict(process_types), stack=stack or app.stack,
                checksum=normalise_checksum(checksum) if checksum else None, commit=commit,
                commit_description=commit_description,
                buildpack_provided_description=buildpack_provided_description)
    session.add(slug)
    session.flush()
    return slug


def record_built_slug(session: Session, app: App, *, checksum: str, size: int, process_types: dict[str, str],
                      **described: Any) -> Slug:
    """A slug whose blob the builder already put in the store."""
    slug = create_slug(session, app, process_types=process_types, checksum=checksum, **described)
    slug.size = size
    session.flush()
    return slug


def is_uploaded(slug: Slug) -> bool:
    return slug.size is not None


def get_slug(session: Session, app: App, ref: str) -> Slug:
    """One of `app`'s slugs by id; another app's slug is not found, as if it did not exist."""
    slug = (session.scalar(select(Slug).where(Slug.id == ref.lower(), Slug.app_id == app.id))
            if UUID_PATTERN.match(ref) else None)
    if slug is None:
        raise NotFound(SLUG_NOT_FOUND, resource="slug")
    return slug


def awaiting_upload(session: Session, slug_id: str) -> Slug:
    """The slug an upload URL names, if its blob is still to come (Conflict once stored)."""
    slug = session.get(Slug, slug_id)
    if slug is None:
        raise NotFound(SLUG_NOT_FOUND, resource="slug")
    if is_uploaded(slug):
        raise Conflict("This slug's blob is already uploaded; a slug never changes. Create a new slug "
                       "with POST /apps/{app}/slugs to upload other code.")
    return slug


def record_upload(session: Session, slug_id: str, checksum: str, size: int) -> Slug:
    """Store what the upload was (called after the blob is in the store, in a new transaction)."""
    slug = awaiting_upload(session, slug_id)
    slug.checksum, slug.size = checksum, size
    session.flush()
    return slug


@dataclass(frozen=True)
class Upload:
    """What `store_upload` stored."""

    checksum: str
    size: int


class CountingReader:
    """A stream that counts what passes through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.count = stream, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.count += len(chunk)
        return chunk


def store_upload(store: SlugStore, stream: BinaryIO, expected: str | None) -> Upload:
    """Put an uploaded slug in the store, hashed as it streams; ChecksumMismatch (nothing kept)
    if the client declared another checksum. The caller bounds `stream` and checked its start."""
    counting = CountingReader(stream)
    checksum = store.put_stream(counting, expected)
    return Upload(checksum, counting.count)


def take_presigned_upload(session: Session, store: SlugStore, app: App, slug_ref: str, max_bytes: int) -> None:
    """A slug the client PUT straight to the store (a pre-signed URL) becomes uploaded only here,
    once its bytes were hashed by Berth: the checksum it declared is verified, never trusted."""
    if not isinstance(store, PresignedSlugUploads):
        return
    slug = get_slug(session, app, slug_ref)
    if is_uploaded(slug):
        return
    try:
        taken = store.take_upload(slug.id, slug.checksum, max_bytes)
    except StorageUnavailable:
        raise  # the API answers 503
    except SlugError as refused:  # too large, not gzip, not the declared checksum: upload again
        raise InvalidParams(str(refused)) from None
    if taken is not None:
        slug.checksum, slug.size = taken
        session.flush()


# ---- releases that carry code --------------------------------------------------------------

def _app_config_rows(session: Session, app: App) -> dict[str, ConfigVar]:
    return {row.name: row for row in session.scalars(select(ConfigVar).where(ConfigVar.app_id == app.id))}


def _release(session: Session, app: App, version: int) -> Release:
    return session.scalars(releases.releases_query(app).where(Release.version == version)).one()


def _check_blob(store: SlugStore, slug: Slug, what: str) -> None:
    if not is_uploaded(slug) or slug.checksum is None:
        raise InvalidParams(f"Slug {slug.id} has no code yet: PUT the slug tarball to its blob URL "
                            f"before {what}.")
    if not store.exists(slug.checksum):
        raise InvalidParams(f"The code of slug {slug.id} is no longer stored (retention deletes slugs "
                            f"older than 30 days outside the newest 20 releases), so it cannot be {what}. "
                            "Deploy the code again.")


def release_slug(session: Session, store: SlugStore, app: App, user: Account, slug_ref: str,
                 description: str | None = None) -> Release:
    """A new release of `app` with one of its uploaded slugs and the app's current config."""
    releases.lock_app(session, app)
    slug = get_slug(session, app, slug_ref)
    _check_blob(store, slug, "released")
    config = {name: row.value for name, row in _app_config_rows(session, app).items()}
    text = description or (f"Deploy {slug.commit[:7]}" if slug.commit else f"Deploy slug {slug.id[:8]}")
    version = releases.create_release(session, app, user, text, config=config, slug_id=slug.id, app_locked=True)
    return _release(session, app, version)


def rollback(session: Session, store: SlugStore, app: App, user: Account, release_ref: str) -> Release:
    """A new release with the slug and config of an earlier one ("Rollback to vN").

    Add-ons are untouched: vars an attachment owns now keep their current values (its
    credentials may have rotated); every other var becomes what it was at the target.
    """
    releases.lock_app(session, app)
    target = releases.get_release(session, app, release_ref)
    if target.status == ReleaseStatus.EXPIRED:
        raise InvalidParams(f"Release v{target.version} has expired: its slug was deleted (slugs are kept "
                            "for the newest 20 releases and for 30 days). Roll back to a newer release "
                            "or deploy the code again.")
    if target.status != ReleaseStatus.SUCCEEDED:
        raise InvalidParams(f"Release v{target.version} {target.status}: only a release that succeeded can "
                            "be rolled back to.")
    if target.slug_id is not None:
        slug = session.get(Slug, target.slug_id)
        if slug is None:
            raise InvalidParams(f"Release v{target.version}'s slug no longer exists; it cannot be rolled back to.")
        _check_blob(store, slug, "rolled back to")
    rows = _app_config_rows(session, app)
    owned = {name: row.value for name, row in rows.items() if row.owner is not None}
    restored = {name: value for name, value in releases.release_config(target).items() if name not in owned}
    for name, row in rows.items():
        if row.owner is None and name not in restored:
            session.delete(row)
        elif row.owner is None and row.value != restored[name]:
            row.value = restored[name]
    for name, value in restored.items():
        if name not in rows:
            session.add(ConfigVar(app_id=app.id, name=name, value=value))
    session.flush()
    version = releases.create_release(session, app, user, f"Rollback to v{target.version}",
                                      config={**restored, **owned}, slug_id=target.slug_id, app_locked=True)
    return _release(session, app, version)
