"""Uploaded source blobs in the S3 bucket of BERTH_SLUG_STORE, when it names one: the client PUTs
the tarball straight to the bucket through a pre-signed URL, and a build reads it back with
Berth's own credentials, never by fetching a URL (so no request goes where a URL says).

    <prefix>sources/<id>/record.json   {"id", "owner_id", "created_at"}; rewritten on use (LastModified)
    <prefix>sources/<id>/blob          the upload, as the client sent it (absent until PUT)

A get_url is recognised as Berth's own only when it names exactly the configured endpoint, the
bucket, and `<prefix>sources/<uuid>/blob` (see `source_id_of`); anything else is a foreign URL.
"""
from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from berth.config import Settings
from berth.db import utcnow
from berth.platform.s3 import S3Location, guarded, is_not_found, listed
from berth.platform.slug_store import StorageUnavailable
from berth.platform.sources.errors import SourceError
from berth.platform.s3_slug_store import TRANSFER
from berth.platform.sources.store import (COLLECT_EVERY_SECONDS, UNUSED_LIFETIME_SECONDS, UploadIncomplete,
                                          UploadTooLarge)
from berth.platform.sources.urls import URL_TTL_SECONDS

CHUNK = 256 * 1024
_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass(frozen=True)
class S3SourceRecord:
    id: str
    owner_id: str
    created_at: datetime


class S3SourceStore:
    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._client = location.client()
        endpoint_url = str(self._client.meta.endpoint_url)  # where pre-signed URLs point
        self._origin = location.origin(endpoint_url)
        self._blob_path = re.compile("^" + re.escape(location.path_of(location.key("sources/"), endpoint_url)) +
                                     f"({_ID})/blob$")

    @classmethod
    def of(cls, settings: Settings) -> "S3SourceStore | None":
        """The store when BERTH_SLUG_STORE names a bucket (one per process and settings), else None."""
        return None if settings.slug_store == "local" else _store_for(S3Location.from_settings(settings))

    def _record_key(self, source_id: str) -> str:
        return self.location.key(f"sources/{source_id}/record.json")

    def _blob_key(self, source_id: str) -> str:
        return self.location.key(f"sources/{source_id}/blob")

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        return guarded(self.location, what, lambda: getattr(self._client, method)(Bucket=self.location.bucket,
                                                                                   **kwargs))

    def create(self, owner_id: str) -> S3SourceRecord:
        record = S3SourceRecord(str(uuid.uuid4()), owner_id, utcnow())
        self._write_record(record)
        return record

    def urls(self, record: S3SourceRecord) -> dict[str, str]:
        """The `source_blob` of POST /sources: pre-signed, valid for URL_TTL_SECONDS. No content type
        is signed: the Heroku CLI PUTs with `Content-Type: ''`."""
        def signed(operation: str, method: str) -> str:
            return str(self._client.generate_presigned_url(
                operation, Params={"Bucket": self.location.bucket, "Key": self._blob_key(record.id)},
                ExpiresIn=URL_TTL_SECONDS, HttpMethod=method))
        return {"get_url": signed("get_object", "GET"), "put_url": signed("put_object", "PUT")}

    def source_id_of(self, url: str) -> str | None:
        """The source id of a get_url this store made: exactly the endpoint's origin and a blob's
        path in the bucket. Any other URL (another bucket, key, host or port) is not ours: None."""
        try:
            parts = urlsplit(url)
            origin = (parts.scheme, (parts.hostname or "").lower(),
                      parts.port or {"http": 80, "https": 443}.get(parts.scheme))
        except ValueError:
            return None
        if origin != self._origin or parts.fragment or unquote(parts.path) != parts.path:
            return None
        found = self._blob_path.match(parts.path)
        return found.group(1) if found else None

    def get(self, source_id: str) -> S3SourceRecord | None:
        if not re.fullmatch(_ID, source_id):
            return None
        try:
            body = self._call("read a source", "get_object", Key=self._record_key(source_id))["Body"]
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        with body:
            saved = json.loads(guarded(self.location, "read a source", lambda: body.read(64 * 1024)))
        return S3SourceRecord(source_id, saved["owner_id"], datetime.fromisoformat(saved["created_at"]))

    def uploaded_size(self, record: S3SourceRecord) -> int | None:
        try:
            head = self._call("look up a source", "head_object", Key=self._blob_key(record.id))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        return int(head["ContentLength"])

    def save_to(self, record: S3SourceRecord, dest: Path, max_bytes: int) -> None:
        """The uploaded blob as the file `dest` (which must not exist), at most `max_bytes` long.
        SourceError, leaving no `dest`, when it is missing, too large or cannot be read."""
        size = self.uploaded_size(record)
        if size is None:
            raise SourceError("Nothing was uploaded to that source: PUT the tarball to its put_url first.")
        if size > max_bytes:
            raise SourceError(f"The source is larger than the limit of {max_bytes} bytes "
                              "(BERTH_SOURCE_MAX_BYTES). Leave out what the build does not need.")
        fd, partial = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
        try:
            body = self._call("read a source", "get_object", Key=self._blob_key(record.id))["Body"]
            with open(fd, "wb") as out, body:
                received = 0
                while chunk := guarded(self.location, "read a source", lambda: body.read(CHUNK)):
                    received += len(chunk)
                    if received > max_bytes:
                        raise SourceError(f"The source is larger than the limit of {max_bytes} bytes "
                                          "(BERTH_SOURCE_MAX_BYTES).")
                    out.write(chunk)
            os.replace(partial, dest)
        except ClientError:
            raise SourceError("The source no longer exists (unused sources are removed after a day). "
                              "Upload it again with POST /sources.") from None
        finally:
            Path(partial).unlink(missing_ok=True)

    def receive(self, record: S3SourceRecord, stream: IO[bytes], length: int, max_bytes: int) -> None:
        """Stores `length` bytes from `stream` (a git push, relayed) as the blob. UploadTooLarge or
        UploadIncomplete, leaving no blob, when the stream is over the limit or ends early."""
        if length > max_bytes:
            raise UploadTooLarge()
        guarded(self.location, "store a source", lambda: self._client.upload_fileobj(
            _Exactly(stream, length), self.location.bucket, self._blob_key(record.id), Config=TRANSFER))

    def touch(self, record: S3SourceRecord) -> None:
        """Marks the source used now (its record's LastModified): kept another UNUSED_LIFETIME_SECONDS."""
        try:
            self._write_record(record)
        except StorageUnavailable:
            pass  # the build already has its copy; collection may come a day early at worst

    def collect(self, now: float | None = None) -> list[str]:
        """Removes the sources unused for a day (the newest of record and blob counts); their ids."""
        now = time.time() if now is None else now
        last_use: dict[str, float] = {}
        for item in listed(self.location, self._client, "sources/"):
            found = re.fullmatch(f"sources/({_ID})/(record\\.json|blob)", item["Key"][len(self.location.prefix):])
            if found:
                stamp = item["LastModified"].timestamp()
                last_use[found.group(1)] = max(stamp, last_use.get(found.group(1), 0.0))
        removed = sorted(source_id for source_id, used in last_use.items() if now - used > UNUSED_LIFETIME_SECONDS)
        for source_id in removed:
            for key in (self._blob_key(source_id), self._record_key(source_id)):
                self._call("delete a source", "delete_object", Key=key)
        return removed

    def collect_if_due(self) -> None:
        """`collect`, at most once every COLLECT_EVERY_SECONDS (a marker object shared by every process)."""
        marker = self.location.key("sources/.collected")
        try:
            head = self._call("look up a source", "head_object", Key=marker)
            if time.time() - head["LastModified"].timestamp() < COLLECT_EVERY_SECONDS:
                return
        except ClientError as error:
            if not is_not_found(error):
                raise
        self._call("store a source", "put_object", Key=marker, Body=b"")
        self.collect()

    def _write_record(self, record: S3SourceRecord) -> None:
        body = json.dumps({"id": record.id, "owner_id": record.owner_id,
                           "created_at": record.created_at.isoformat()}).encode()
        self._call("store a source", "put_object", Key=self._record_key(record.id), Body=body)


@functools.lru_cache(maxsize=4)
def _store_for(location: S3Location) -> S3SourceStore:
    return S3SourceStore(location)


class _Exactly:
    """`length` bytes of a stream, UploadIncomplete if it ends sooner."""

    def __init__(self, stream: IO[bytes], length: int) -> None:
        self.stream, self.left = stream, length

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            return b""
        chunk = self.stream.read(min(CHUNK if size is None or size < 0 else size, self.left))
        if not chunk:
            raise UploadIncomplete()
        self.left -= len(chunk)
        return chunk
