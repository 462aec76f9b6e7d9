"""Where slug tarballs live: content-addressed by their sha256 behind one small interface, so that
an S3-compatible store can replace the local one. Every read is verified against its address."""
from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol, runtime_checkable

from berth.config import Settings
from berth.platform.slugs import (SlugError, UnpackLimits, checksum_of_stream, normalise_checksum, unpack,
                                  verify_checksum)

_CHUNK = 1024 * 1024


class MissingSlug(SlugError):
    pass


class StorageUnavailable(SlugError):
    """The store (S3) could not be reached or refused Berth's request. The message is safe to show
    (no key, no signature) and says what to do next."""


class SlugStore(Protocol):
    def put(self, path: Path, expected: str | None = None) -> str:
        """Store a copy of the tarball at `path`; its checksum (`SHA256:<hex>`). ChecksumMismatch
        if `expected` is given and differs (nothing is stored then)."""

    def put_stream(self, source: BinaryIO, expected: str | None = None) -> str:
        """`put` from a stream (an upload), hashed as it is copied."""

    def open(self, checksum: str) -> BinaryIO:
        """The stored tarball, verified against `checksum` before it is returned (MissingSlug
        when absent, ChecksumMismatch when its content no longer matches)."""

    def exists(self, checksum: str) -> bool: ...

    def stored(self) -> Iterator[tuple[str, datetime]]:
        """Every blob: (checksum, when it was stored), for collecting those no slug names."""

    def delete(self, checksum: str) -> None:
        """Remove the blob; absent is fine."""


@runtime_checkable
class PresignedSlugUploads(Protocol):
    """A store a client uploads slugs to directly (S3's pre-signed PUT), not through Berth. What
    arrives there is untrusted until `take_upload` has streamed it through `put_stream`."""

    def upload_url(self, slug_id: str, ttl_seconds: int = 3600) -> str: ...

    def take_upload(self, slug_id: str, expected: str | None, max_bytes: int) -> tuple[str, int] | None:
        """The slug's upload moved to its verified address: (checksum, size); None if none came."""

    def collect_leftovers(self, before: datetime) -> list[str]:
        """Delete uploads no release took and staging objects of puts that never finished, written
        before `before`; their keys."""


def put_file(store: SlugStore, path: Path, expected: str | None) -> str:
    """`store.put`, for every store: the file through `put_stream`."""
    if expected is not None:
        normalise_checksum(expected)  # refuses a malformed one before any work
    with open(path, "rb") as source:
        return store.put_stream(source, expected)


class LocalSlugStore:
    """Files under `root/sha256/ab/<hex>.tgz`, written to a temporary file in the same directory,
    flushed to disk and renamed into place, so a reader sees a whole blob or none."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, checksum: str) -> Path:
        hexdigest = normalise_checksum(checksum)[len("SHA256:"):]
        return self.root / "sha256" / hexdigest[:2] / f"{hexdigest}.tgz"

    def put(self, path: Path, expected: str | None = None) -> str:
        return put_file(self, path, expected)

    def put_stream(self, source: BinaryIO, expected: str | None = None) -> str:
        """`put` from a stream: hashed while copied, so the blob is read once."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = self.root / "tmp"
        staging.mkdir(mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=staging, prefix="slug-", suffix=".part")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as target:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
                target.flush()
                os.fsync(target.fileno())
            checksum = "SHA256:" + digest.hexdigest()
            verify_checksum(checksum, expected)
            final = self._path(checksum)
            final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(temporary, final)  # same content under the same name: replacing is harmless
            return checksum
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def open(self, checksum: str) -> BinaryIO:
        path = self._path(checksum)
        try:
            stream = open(path, "rb")
        except FileNotFoundError:
            raise MissingSlug(f"The slug {checksum} is no longer stored.") from None
        try:
            verify_checksum(checksum_of_stream(stream), checksum)
            stream.seek(0)
            return stream
        except BaseException:
            stream.close()
            raise

    def exists(self, checksum: str) -> bool:
        return self._path(checksum).is_file()

    def delete(self, checksum: str) -> None:
        self._path(checksum).unlink(missing_ok=True)

    def stored(self) -> Iterator[tuple[str, datetime]]:
        for blob in sorted((self.root / "sha256").glob("??/*.tgz")):
            if blob.is_file() and not blob.is_symlink():
                yield "SHA256:" + blob.name[:-len(".tgz")], datetime.fromtimestamp(blob.stat().st_mtime, timezone.utc)


def unpack_slug(store: SlugStore, checksum: str, destination: Path,
                limits: UnpackLimits = UnpackLimits(), *, links_anywhere: bool = False) -> int:
    """What a dyno's /app is made from: the stored slug, verified, safely unpacked into the empty
    `destination`; the bytes written (`links_anywhere`: see slugs.unpack)."""
    with store.open(checksum) as stream:
        return unpack(stream, destination, limits, links_anywhere=links_anywhere)


def local_store(data_dir: Path) -> LocalSlugStore:
    """The store under the data dir (`$BERTH_DATA_DIR/slugs`)."""
    return LocalSlugStore(data_dir / "slugs")


def slug_store_of(settings: Settings) -> SlugStore:
    """The store BERTH_SLUG_STORE names: the local one (the default) or an S3 bucket. Every process
    (web, builder, runner, worker) asks here, so one setting moves them all."""
    if settings.slug_store == "local":
        return local_store(settings.data_dir)
    return _s3_store(settings)


@functools.lru_cache(maxsize=4)
def _s3_store(settings: Settings) -> SlugStore:
    """One S3 store (and boto3 client, which is thread-safe) per process and settings: making a
    client costs more than most requests."""
    from berth.platform.s3_slug_store import S3SlugStore  # boto3 is loaded only when S3 is used

    return S3SlugStore.from_settings(settings)
