"""POST /sources (and the old POST /apps/{app}/sources): a place to upload source for a build,
and the self-authorising URLs of that place, which take no API key (the Heroku CLI PUTs with
`Content-Type: ''` and no Authorization, and a build reads the get_url the same way)."""
from __future__ import annotations

from typing import Any

from flask import Response, request, send_file

from berth import signed_urls
from berth.errors import BerthError, NotFound, PayloadTooLarge
from berth.httpapi.body import load
from berth.httpapi.context import current_account_id, db_session, public
from berth.httpapi.openapi import describe
from berth.platform import apps
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.sources.s3_store import S3SourceStore
from berth.platform.sources.schemas import SourceCreateSchema, SourceSchema
from berth.platform.sources.store import SourceRecord, SourceStore, UploadIncomplete, UploadTooLarge
from berth.platform.sources.urls import GET, PATH, PUT, source_urls

Reply = Any
EXPIRED = "This source URL is invalid or has expired. Create a new source with POST /sources."


def _store() -> SourceStore:
    return SourceStore.of(settings())


def _create_source() -> Reply:
    load(SourceCreateSchema())
    s3 = S3SourceStore.of(settings()) if settings().slug_store != "local" else None
    if s3 is not None:  # the client PUTs straight to the bucket; the build reads it back from there
        s3.collect_if_due()
        return SourceSchema().dump({"source_blob": s3.urls(s3.create(current_account_id()))}), 201
    store = _store()
    store.collect_if_due()
    record = store.create(current_account_id())
    return SourceSchema().dump({"source_blob": source_urls(settings().api_url, record.id)}), 201


@blueprint.post("/sources")
@describe(summary="Create a source: URLs to upload a tarball to and to build from", request=SourceCreateSchema,
          response=SourceSchema, status=201)
def create_source() -> Reply:
    return _create_source()


@blueprint.post("/apps/<app_ref>/sources")
@describe(summary="Create a source (the older path; the app must be yours or shared with you)",
          request=SourceCreateSchema, response=SourceSchema, status=201)
def create_app_source(app_ref: str) -> Reply:
    apps.get_app(db_session(), current_account_id(), app_ref)
    return _create_source()


def _signed_record(purpose: str, token: str) -> SourceRecord:
    try:
        source_id = signed_urls.verify(purpose, token)
    except signed_urls.InvalidToken:
        raise NotFound(EXPIRED, resource="source") from None
    record = _store().get(source_id)
    if record is None:
        raise NotFound("This source no longer exists (unused sources are removed after a day). "
                       "Create a new one with POST /sources.", resource="source")
    return record


DISCARD_AT_MOST = 32 * 1024 * 1024


def _discard_body(length: int) -> None:
    """Read (and drop) a refused upload's body, up to DISCARD_AT_MOST bytes, before answering: a
    client still sending when the connection closes sees a broken pipe, not the 413 that says why."""
    remaining = min(length, DISCARD_AT_MOST)
    stream = request.environ["wsgi.input"]
    while remaining > 0:
        chunk = stream.read(min(remaining, 1024 * 1024))
        if not chunk:
            return
        remaining -= len(chunk)


# Not in the OpenAPI document: blob URLs are handed out, not called by API clients, and carry raw bytes.
@blueprint.put(PATH + "<token>")
@public
def upload_source(token: str) -> Reply:
    record = _signed_record(PUT, token)
    limit = settings().source_max_bytes
    length = request.content_length
    if length is None:
        raise BerthError("Send the source with a Content-Length header (no chunked uploads).",
                         error_id="length_required", status=411)
    too_large = PayloadTooLarge(f"The source is larger than the limit of {limit} bytes. Leave out what "
                                "the build does not need (.git, dependencies, build output).")
    if length > limit:
        _discard_body(length)
        raise too_large
    request.max_content_length = limit
    try:
        digest = _store().receive(record, request.stream, length, limit)
    except UploadTooLarge:
        raise too_large from None
    except UploadIncomplete:
        raise BerthError("The upload ended before Content-Length bytes arrived. Upload it again.") from None
    return Response(status=200, headers={"ETag": f'"{digest}"'})


@blueprint.get(PATH + "<token>")
@public
def download_source(token: str) -> Reply:
    record = _signed_record(GET, token)
    if not record.uploaded:
        raise NotFound("Nothing was uploaded to this source yet: PUT the tarball to its put_url first.",
                       resource="source")
    return send_file(record.blob, mimetype="application/octet-stream", conditional=True, max_age=0)
