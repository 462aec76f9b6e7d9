"""/apps/{app}/slugs, their blob URLs, and POST /apps/{app}/releases (release a slug, roll back)."""
from __future__ import annotations

from typing import Any, BinaryIO

from flask import request, send_file

from berth import signed_urls
from berth.errors import BadRequest, Forbidden, Gone, InternalError, InvalidParams, PayloadTooLarge
from berth.httpapi.body import load
from berth.httpapi.context import current_account, current_account_id, database, db_session, public
from berth.httpapi.openapi import describe
from berth.platform import apps, deploys, stacks
from berth.platform.api import blueprint
from berth.platform.api.release_output import release_schema
from berth.platform.api.helpers import settings
from berth.platform.models import Slug
from berth.platform.schemas import ReleaseCreateSchema, ReleaseSchema, SlugCreateSchema, SlugSchema
from berth.platform.slug_store import MissingSlug, PresignedSlugUploads, SlugStore, slug_store_of
from berth.platform.slugs import ChecksumMismatch, SlugError, check_size

Reply = Any
BLOB_URL_SECONDS = 3600
_PURPOSE = {"PUT": "slug:put", "GET": "slug:get"}
_GZIP_MAGIC = b"\x1f\x8b"


def slug_store() -> SlugStore:
    return slug_store_of(settings())


def _blob_url(slug: Slug, method: str) -> str:
    store = slug_store()
    if method == "PUT" and isinstance(store, PresignedSlugUploads):
        return store.upload_url(slug.id, BLOB_URL_SECONDS)  # straight to S3; verified at release
    token = signed_urls.sign(_PURPOSE[method], slug.id, ttl_seconds=BLOB_URL_SECONDS)
    return f"{settings().api_url}/slug-blobs/{token}"


def _slug_schema() -> SlugSchema:
    return SlugSchema(blob_url=_blob_url)


@blueprint.post("/apps/<app_ref>/slugs")
@describe(summary="Create a slug for code built elsewhere; PUT its gzip tarball to blob.url",
          request=SlugCreateSchema, response=SlugSchema, status=201)
def create_slug(app_ref: str) -> Reply:
    params = load(SlugCreateSchema())
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    params["stack"] = stacks.resolve_stack(params["stack"]) if params["stack"] else None
    return _slug_schema().dump(deploys.create_slug(session, app, **params)), 201


@blueprint.get("/apps/<app_ref>/slugs/<slug_ref>")
@describe(summary="One slug of an app", response=SlugSchema)
def show_slug(app_ref: str, slug_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return _slug_schema().dump(deploys.get_slug(session, app, slug_ref))


def _slug_id(purpose: str, token: str) -> str:
    try:
        return signed_urls.verify(purpose, token)
    except signed_urls.InvalidToken:
        raise Forbidden("This slug URL is invalid or has expired. Ask for the slug again "
                        "(GET /apps/{app}/slugs/{id}) for a fresh one.") from None


class BoundedBody:
    """The request body, refused past `limit` bytes (PayloadTooLarge) and unless it starts like a
    gzip file, read as it arrives: never held whole in memory."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream, self.limit, self.read_so_far = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size if size > 0 else 1024 * 1024)
        if self.read_so_far == 0 and chunk and not chunk.startswith(_GZIP_MAGIC[:len(chunk)]):
            raise InvalidParams("A slug must be a gzip-compressed tarball (tar -czf slug.tgz ./app).")
        self.read_so_far += len(chunk)
        if self.read_so_far > self.limit:
            raise PayloadTooLarge(_too_large(self.read_so_far, self.limit))
        return chunk


def _too_large(size: int, limit: int) -> str:
    try:
        check_size(size, limit)
    except SlugError as error:
        return str(error)
    return ""


@blueprint.put("/slug-blobs/<token>")
@public
@describe(summary="Upload a slug's tarball to the URL its slug gave (no API key: the URL authorises it)",
          response=SlugSchema)
def upload_slug_blob(token: str) -> Reply:
    slug_id = _slug_id("slug:put", token)
    limit = settings().slug_max_bytes
    # A short read first, then the upload outside any transaction (SQLite's writer lock would
    # stop every other write for as long as the client takes), then a short write.
    with database().session(write=False) as session:
        expected = deploys.awaiting_upload(session, slug_id).checksum
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(_too_large(request.content_length, limit))
    request.max_content_length = limit + 1  # BoundedBody says it first, in slug words, not the API's 1 MB
    body = BoundedBody(request.stream, limit)
    try:
        upload = deploys.store_upload(slug_store(), body, expected)  # type: ignore[arg-type]
    except ChecksumMismatch as error:
        raise InvalidParams(str(error)) from None
    if upload.size == 0:
        raise BadRequest("The upload was empty: PUT the slug's gzip tarball as the request body.")
    slug = deploys.record_upload(db_session(), slug_id, upload.checksum, upload.size)
    return _slug_schema().dump(slug)


@blueprint.get("/slug-blobs/<token>")
@public
@describe(summary="Download a slug's tarball (checked against its checksum first)", streams=("application/gzip",))
def download_slug_blob(token: str) -> Reply:
    slug_id = _slug_id("slug:get", token)
    slug = db_session().get(Slug, slug_id)
    if slug is None or slug.checksum is None or slug.size is None:
        raise Forbidden("This slug has no stored code.")
    try:
        stream = slug_store().open(slug.checksum)
    except MissingSlug as error:
        raise Gone(str(error)) from None
    except ChecksumMismatch as error:  # altered on disk: never served
        raise InternalError(f"The stored slug failed its checksum check ({error}); deploy the code again.") from None
    return send_file(stream, mimetype="application/gzip", download_name=f"{slug.id}.tgz")


@blueprint.post("/apps/<app_ref>/releases")
@describe(summary="Release an uploaded slug with the current config, or roll back to an earlier release",
          request=ReleaseCreateSchema, response=ReleaseSchema, status=201)
def create_release(app_ref: str) -> Reply:
    params = load(ReleaseCreateSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    if params["slug"] is not None:
        deploys.take_presigned_upload(session, slug_store(), app, params["slug"], settings().slug_max_bytes)
        release = deploys.release_slug(session, slug_store(), app, account, params["slug"], params["description"])
    else:
        release = deploys.rollback(session, slug_store(), app, account, params["release"])
    return release_schema(session, app, [release]).dump(release), 201
