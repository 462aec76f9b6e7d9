"""Getting a build's or app setup's `source_blob.url` onto local disk, without server-side request
forgery.

Berth's own source URLs (`POST /sources`' get_url) are read from the store, not over HTTP, and
only for the account that created the source. Any other URL is fetched only from a host the
operator listed in BERTH_SOURCE_HOSTS (none by default), through the outbound policy (loopback,
private and link-local addresses refused, after DNS too, on every redirect), within a size limit
and a time limit. A `SHA256:<hex>` checksum, when given, is verified before the path is returned.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urljoin, urlsplit

import requests

from berth import signed_urls
from berth.config import Settings
from berth.outbound import TargetPolicy, TargetRefused
from berth.platform.slug_store import StorageUnavailable
from berth.platform.sources.errors import SourceError
from berth.platform.sources.store import UNUSED_LIFETIME_SECONDS, SourceRecord, SourceStore
from berth.platform.sources.urls import GET, own_token

if TYPE_CHECKING:
    from berth.platform.sources.s3_store import S3SourceRecord, S3SourceStore

CHECKSUM = re.compile(r"^SHA256:([0-9a-fA-F]{64})$", re.IGNORECASE)
MAX_REDIRECTS = 5
CHUNK = 256 * 1024
CONNECT_TIMEOUT_SECONDS = 10.0
# A build may wait in the queue past its get_url's hour; its own account's source stays readable
# to it for as long as the source is kept.
QUEUED_GRACE_SECONDS = UNUSED_LIFETIME_SECONDS
SOURCE_GONE = ("The source no longer exists (unused sources are removed after a day). "
               "Upload it again with POST /sources.")
OTHER_ACCOUNT = "That source belongs to another account. Upload your own with POST /sources."
NOTHING_UPLOADED = "Nothing was uploaded to that source: PUT the tarball to its put_url first."


def parse_checksum(checksum: str | None) -> str | None:
    """The expected sha256 (lower-case hex) of `SHA256:<hex>`, None for none; SourceError otherwise."""
    if checksum is None or checksum == "":
        return None
    found = CHECKSUM.match(checksum)
    if found is None:
        raise SourceError("The source checksum must be SHA256: followed by 64 hexadecimal digits "
                          "(e.g. the output of `sha256sum source.tgz`).")
    return found.group(1).lower()


@dataclass(frozen=True)
class SourceFetcher:
    store: SourceStore
    policy: TargetPolicy
    hosts: tuple[str, ...] = ()
    max_bytes: int = 512 * 1024 * 1024
    timeout_seconds: float = 300.0
    s3: "S3SourceStore | None" = None  # sources uploaded to the S3 slug store, when one is configured

    @classmethod
    def from_settings(cls, settings: Settings) -> "SourceFetcher":
        s3 = None
        if settings.slug_store != "local":
            from berth.platform.sources.s3_store import S3SourceStore  # boto3 only when S3 is used

            s3 = S3SourceStore.of(settings)
        return cls(SourceStore.of(settings), TargetPolicy.from_settings(settings), settings.source_hosts,
                   settings.source_max_bytes, settings.source_fetch_timeout_seconds, s3)

    def check(self, url: str, checksum: str | None = None, *, account_id: str) -> None:
        """What `fetch` would refuse without fetching, for the API to answer 422 at once: a bad
        checksum, an own URL that is expired, another account's or not uploaded, a host not allowed."""
        parse_checksum(checksum)
        token = own_token(url, set(self.policy.own_origins))
        s3_id = self.s3.source_id_of(url) if self.s3 is not None else None
        if token is not None:
            self._own_record(token, account_id, grace_seconds=0)
        elif s3_id is not None:
            with _storage_as_source_error():
                record = self._s3_record(s3_id, account_id)
                if self.s3.uploaded_size(record) is None:  # type: ignore[union-attr]
                    raise SourceError(NOTHING_UPLOADED)
        else:
            self._check_foreign(url)

    def fetch(self, url: str, checksum: str | None = None, *, account_id: str, dest: Path) -> Path:
        """The source at `url` as the file `dest` (which must not exist), checksum verified. Raises
        SourceError, leaving no `dest`, when the source cannot be had."""
        expected = parse_checksum(checksum)
        token = own_token(url, set(self.policy.own_origins))
        s3_id = self.s3.source_id_of(url) if self.s3 is not None else None
        if token is not None:
            record = self._own_record(token, account_id, grace_seconds=QUEUED_GRACE_SECONDS)
            _snapshot(record.blob, dest)
            self.store.touch(record)
        elif s3_id is not None and self.s3 is not None:
            with _storage_as_source_error():
                s3_record = self._s3_record(s3_id, account_id)
                self.s3.save_to(s3_record, dest, self.max_bytes)
                self.s3.touch(s3_record)
        else:
            self._download(url, dest)
        if expected is not None:
            actual = _sha256(dest)
            if actual != expected:
                dest.unlink()
                raise SourceError(f"The source's checksum does not match: expected SHA256:{expected}, got "
                                  f"SHA256:{actual}. Check that the URL serves the tarball you meant.")
        return dest

    def _own_record(self, token: str, account_id: str, *, grace_seconds: float) -> SourceRecord:
        try:
            source_id = signed_urls.verify(GET, token, now=time.time() - grace_seconds)
        except signed_urls.InvalidToken:
            raise SourceError("The source URL is invalid or has expired. Create a new source with "
                              "POST /sources (heroku builds:create does), upload the tarball, and use "
                              "its get_url.") from None
        record = self.store.get(source_id)
        if record is None:
            raise SourceError(SOURCE_GONE)
        if record.owner_id != account_id:
            raise SourceError(OTHER_ACCOUNT)
        if not record.uploaded:
            raise SourceError(NOTHING_UPLOADED)
        return record

    def _s3_record(self, source_id: str, account_id: str) -> "S3SourceRecord":
        """The S3 source a get_url names, if it is this account's. Its pre-signed signature is not
        what admits it (Berth reads with its own credentials): the owner check is."""
        assert self.s3 is not None
        record = self.s3.get(source_id)
        if record is None:
            raise SourceError(SOURCE_GONE)
        if record.owner_id != account_id:
            raise SourceError(OTHER_ACCOUNT)
        return record

    def _check_foreign(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise SourceError("The source URL is not a valid URL.") from None
        if parts.scheme not in ("http", "https") or not host:
            raise SourceError("The source URL must be an http or https URL of a tarball.")
        if not self._host_allowed(host):
            raise SourceError(f"Berth does not fetch source from {host}: upload the tarball with POST "
                              "/sources (heroku builds:create does), or ask the operator to add the host "
                              "to BERTH_SOURCE_HOSTS.")
        try:
            self.policy.check_url(url, what="source URL")
        except TargetRefused as refused:
            raise SourceError(str(refused)) from None

    def _host_allowed(self, host: str) -> bool:
        return any(host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:]))
                   for allowed in self.hosts)

    def _download(self, url: str, dest: Path) -> None:
        deadline = time.monotonic() + self.timeout_seconds
        fd, partial = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
        try:
            with open(fd, "wb") as out, self.policy.session() as session:
                for _ in range(MAX_REDIRECTS + 1):
                    self._check_foreign(url)
                    response = self._get(session, url, deadline)
                    with response:
                        if response.is_redirect:
                            url = urljoin(url, response.headers.get("Location", ""))
                            continue
                        self._save(response, url, out, deadline)
                        break
                else:
                    raise SourceError(f"The source URL redirected more than {MAX_REDIRECTS} times.")
            os.replace(partial, dest)
        finally:
            Path(partial).unlink(missing_ok=True)

    def _get(self, session: requests.Session, url: str, deadline: float) -> requests.Response:
        left = max(deadline - time.monotonic(), 0.1)
        try:
            return session.get(url, stream=True, allow_redirects=False,
                               timeout=(min(CONNECT_TIMEOUT_SECONDS, left), left))
        except TargetRefused as refused:
            raise SourceError(str(refused)) from None
        except requests.Timeout:
            raise SourceError(f"{_origin(url)} did not answer within {self.timeout_seconds:g} s.") from None
        except requests.RequestException as error:
            raise SourceError(f"The source could not be fetched from {_origin(url)}: "
                              f"{type(error).__name__}.") from None

    def _save(self, response: requests.Response, url: str, out: object, deadline: float) -> None:
        if response.status_code != 200:
            raise SourceError(f"Fetching the source failed: {_origin(url)} answered HTTP {response.status_code}.")
        too_large = SourceError(f"The source at {_origin(url)} is larger than the limit of {self.max_bytes} "
                                "bytes (BERTH_SOURCE_MAX_BYTES).")
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > self.max_bytes:
            raise too_large
        received = 0
        try:
            for chunk in response.iter_content(CHUNK):
                received += len(chunk)
                if received > self.max_bytes:
                    raise too_large
                if time.monotonic() > deadline:
                    raise SourceError(f"Fetching the source from {_origin(url)} took longer than "
                                      f"{self.timeout_seconds:g} s.")
                out.write(chunk)  # type: ignore[attr-defined]
        except requests.RequestException as error:
            raise SourceError(f"The source download from {_origin(url)} broke off: {type(error).__name__}.") from None


@contextlib.contextmanager
def _storage_as_source_error() -> Iterator[None]:
    """The S3 store being down is a source that cannot be had now: a message the build prints."""
    try:
        yield
    except StorageUnavailable as error:
        raise SourceError(str(error)) from None


def _origin(url: str) -> str:
    """Scheme and host only: a pre-signed URL's query is a secret and never shown."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _snapshot(blob: Path, dest: Path) -> None:
    """`dest` becomes the blob as it is now: a hard link (a later upload replaces the store's entry,
    not this one), or a copy across file systems."""
    try:
        os.link(blob, dest)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.copyfile(blob, dest)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
