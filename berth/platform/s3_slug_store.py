"""Slugs in an S3 bucket: `<prefix>sha256/ab/<hex>.tgz`, the same addresses as the local store.

A blob's address is its sha256, known only once the whole stream was read, so a put streams into a
staging object (`<prefix>tmp/<uuid>.part`, multipart past 8 MiB) while hashing it, checks the
checksum, and only then copies it to its address inside the bucket; a mismatch, or any failure,
leaves nothing at an address. A read downloads into an unlinked temporary file while hashing and
hands it out only when the hash is the address, so unverified bytes never reach unpack.

Slugs a client uploads through a pre-signed URL (POST /apps/{app}/slugs) land at
`<prefix>uploads/<slug id>.tgz`, which nothing trusts: `take_upload` streams such an object
through `put_stream` (the same hashing and checks) when the slug is released.
"""
from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from berth.config import Settings
from berth.platform.s3 import S3Location, guarded, is_not_found, listed
from berth.platform.slug_store import MissingSlug, StorageUnavailable, put_file
from berth.platform.slugs import SlugError, normalise_checksum, verify_checksum

_CHUNK = 1024 * 1024
_BLOB_KEY = re.compile(r"sha256/[0-9a-f]{2}/([0-9a-f]{64})\.tgz\Z")
# Sequential parts (use_threads=False): the hash is computed in the order the bytes are sent.
TRANSFER = TransferConfig(multipart_threshold=8 * _CHUNK, multipart_chunksize=8 * _CHUNK, use_threads=False)
UPLOAD_URL_SECONDS = 3600
GZIP_MAGIC = b"\x1f\x8b"


class UploadRefused(SlugError):
    """A client's pre-signed upload cannot become a slug (too large, not gzip, checksum)."""


class _Hashing:
    """A stream hashed (and counted) as it is read."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.digest, self.size = source, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.source.read(size if size is not None and size > 0 else _CHUNK)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk

    @property
    def checksum(self) -> str:
        return "SHA256:" + self.digest.hexdigest()


class S3SlugStore:
    def __init__(self, location: S3Location, scratch: Path | None = None) -> None:
        self.location = location
        self.scratch = scratch  # where `open` spools a blob while verifying it (the system's tmp if None)
        self._client = location.client()

    @classmethod
    def from_settings(cls, settings: Settings) -> "S3SlugStore":
        return cls(S3Location.from_settings(settings), settings.data_dir / "tmp")

    def __repr__(self) -> str:
        return f"S3SlugStore(bucket={self.location.bucket!r}, prefix={self.location.prefix!r})"

    def _key(self, checksum: str) -> str:
        hexdigest = normalise_checksum(checksum)[len("SHA256:"):]
        return self.location.key(f"sha256/{hexdigest[:2]}/{hexdigest}.tgz")

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        return guarded(self.location, what, lambda: getattr(self._client, method)(Bucket=self.location.bucket,
                                                                                   **kwargs))

    # -- the SlugStore protocol ---------------------------------------------------------------

    def put(self, path: Path, expected: str | None = None) -> str:
        return put_file(self, path, expected)

    def put_stream(self, source: BinaryIO, expected: str | None = None) -> str:
        if expected is not None:
            normalise_checksum(expected)
        staging = self.location.key(f"tmp/{uuid.uuid4()}.part")
        hashing = _Hashing(source)
        try:
            guarded(self.location, "store a slug", lambda: self._client.upload_fileobj(
                hashing, self.location.bucket, staging, Config=TRANSFER))
            checksum = hashing.checksum
            verify_checksum(checksum, expected)
            if not self.exists(checksum):  # same content under the same name: nothing to copy
                guarded(self.location, "store a slug", lambda: self._client.copy(
                    {"Bucket": self.location.bucket, "Key": staging}, self.location.bucket, self._key(checksum),
                    Config=TRANSFER))
            return checksum
        finally:
            self._delete_key(staging)

    def open(self, checksum: str) -> BinaryIO:
        key = self._key(checksum)
        spooled = tempfile.TemporaryFile(dir=self._scratch())
        try:
            try:
                body = self._call("read a slug", "get_object", Key=key)["Body"]
            except ClientError as error:
                if is_not_found(error):
                    raise MissingSlug(f"The slug {checksum} is no longer stored.") from None
                raise
            digest = hashlib.sha256()
            with body:
                while chunk := guarded(self.location, "read a slug", lambda: body.read(_CHUNK)):
                    digest.update(chunk)
                    spooled.write(chunk)
            verify_checksum("SHA256:" + digest.hexdigest(), checksum)
            spooled.seek(0)
            return spooled  # type: ignore[return-value]
        except BaseException:
            spooled.close()
            raise

    def exists(self, checksum: str) -> bool:
        return self._exists(self._key(checksum), "look up a slug")

    def stored(self) -> Iterator[tuple[str, datetime]]:
        for item in listed(self.location, self._client, "sha256/"):
            found = _BLOB_KEY.match(item["Key"][len(self.location.prefix):])
            if found:
                yield "SHA256:" + found.group(1), item["LastModified"]

    def delete(self, checksum: str) -> None:
        self._delete_key(self._key(checksum))

    # -- pre-signed slug uploads ------------------------------------------------------------

    def upload_url(self, slug_id: str, ttl_seconds: int = UPLOAD_URL_SECONDS) -> str:
        """A URL the client PUTs the slug's tarball to (no credentials), valid `ttl_seconds`."""
        return str(self._client.generate_presigned_url(
            "put_object", Params={"Bucket": self.location.bucket, "Key": self._upload_key(slug_id)},
            ExpiresIn=ttl_seconds, HttpMethod="PUT"))

    def take_upload(self, slug_id: str, expected: str | None, max_bytes: int) -> tuple[str, int] | None:
        """The slug's pre-signed upload, verified and moved to its address: (checksum, size). None
        when nothing was uploaded. UploadRefused (and the upload deleted, so the client can send
        it again) when it is too large, not gzip, or not the checksum the slug declared."""
        key = self._upload_key(slug_id)
        try:
            body = self._call("read an uploaded slug", "get_object", Key=key)["Body"]
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        try:
            with body:
                checked = _CheckedUpload(body, max_bytes)
                checksum = self.put_stream(checked, expected)  # type: ignore[arg-type]
        except UploadRefused:
            self._delete_key(key)
            raise
        except StorageUnavailable:
            raise
        except SlugError as error:  # the declared checksum differs
            self._delete_key(key)
            raise UploadRefused(f"{error} PUT the slug's tarball to its blob URL again.") from None
        if checked.size == 0:
            self._delete_key(key)
            raise UploadRefused("The upload was empty: PUT the slug's gzip tarball to the blob URL.")
        self._delete_key(key)
        return checksum, checked.size

    def collect_leftovers(self, before: datetime) -> list[str]:
        """Uploads no release took (their URL lasted an hour) and staging objects a crashed put
        left, written before `before`: deleted; their keys."""
        stale = [item["Key"] for under in ("uploads/", "tmp/") for item in listed(self.location, self._client, under)
                 if item["LastModified"] < before]
        for key in stale:
            self._delete_key(key)
        return stale

    # -- helpers ------------------------------------------------------------------------------

    def _upload_key(self, slug_id: str) -> str:
        return self.location.key(f"uploads/{uuid.UUID(slug_id)}.tgz")

    def _exists(self, key: str, what: str) -> bool:
        try:
            self._call(what, "head_object", Key=key)
        except ClientError as error:
            if is_not_found(error):
                return False
            raise
        return True

    def _delete_key(self, key: str) -> None:
        self._call("delete a slug", "delete_object", Key=key)

    def _scratch(self) -> str | None:
        if self.scratch is None:
            return None
        self.scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(self.scratch)


class _CheckedUpload:
    """A client's uploaded tarball as it is read: refused past `max_bytes` or unless it starts like
    a gzip file."""

    def __init__(self, body: Any, max_bytes: int) -> None:
        self.body, self.max_bytes, self.size = body, max_bytes, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.body.read(size if size is not None and size > 0 else _CHUNK)
        if self.size == 0 and chunk and not chunk.startswith(GZIP_MAGIC[:len(chunk)]):
            raise UploadRefused("A slug must be a gzip-compressed tarball (tar -czf slug.tgz ./app): PUT it "
                                "again to the blob URL.")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise UploadRefused(f"The slug is larger than the limit of {self.max_bytes} bytes "
                                "(BERTH_SLUG_MAX_BYTES).")
        return bytes(chunk)
