"""The S3 bucket slugs and sources live in when BERTH_SLUG_STORE is `s3://bucket[/prefix]`: where it
is, a boto3 client for it with short time limits (a server that is down answers in seconds, not
never), pre-signed URLs, and one exception for "the bucket cannot be reached" that names no secret."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError

from berth.config import Settings
from berth.platform.slug_store import StorageUnavailable

T = TypeVar("T")
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 60
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str                       # "" or "path/" (always ends with a slash)
    endpoint: str                     # "" for AWS itself
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "S3Location":
        if not settings.slug_store.startswith("s3://"):
            raise ValueError("BERTH_SLUG_STORE does not name an S3 bucket")
        bucket, _, prefix = settings.slug_store[len("s3://"):].partition("/")
        return cls(bucket, f"{prefix.strip('/')}/" if prefix.strip("/") else "", settings.s3_endpoint,
                   settings.s3_region, settings.s3_access_key_id, settings.s3_secret_access_key)

    def key(self, name: str) -> str:
        return self.prefix + name

    def client(self) -> Any:
        """A client of its own (boto3 clients are thread-safe, sessions are not): path-style URLs so
        that a pre-signed URL names the endpoint's host and the bucket in its path."""
        config = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                        retries={"max_attempts": 2, "mode": "standard"}, s3={"addressing_style": "path"},
                        signature_version="s3v4", request_checksum_calculation="when_required",
                        response_checksum_validation="when_required")
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint or None, region_name=self.region,
            aws_access_key_id=self.access_key_id or None, aws_secret_access_key=self.secret_access_key or None,
            config=config)

    def origin(self, endpoint_url: str | None = None) -> tuple[str, str, int]:
        """(scheme, host, port) of the endpoint pre-signed URLs name (`endpoint_url`: the client's,
        which boto3 picks for AWS itself when no endpoint is configured)."""
        parts = urlsplit(endpoint_url or self.endpoint or f"https://s3.{self.region}.amazonaws.com")
        return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)

    def path_of(self, key: str, endpoint_url: str | None = None) -> str:
        """The URL path (path-style addressing) of an object of this bucket."""
        base = urlsplit(endpoint_url or self.endpoint).path.rstrip("/")
        return f"{base}/{self.bucket}/{key}"


def is_not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in NOT_FOUND_CODES


def guarded(location: S3Location, what: str, call: Callable[[], T]) -> T:
    """`call()`, with S3's connection and permission failures as StorageUnavailable (a message that
    names the endpoint and bucket, never a credential). A not-found ClientError passes through."""
    try:
        return call()
    except ClientError as error:
        if is_not_found(error):
            raise
        code = error.response.get("Error", {}).get("Code", "error")
        raise StorageUnavailable(f"The slug store (bucket {location.bucket} at {_shown(location)}) refused "
                                 f"to {what}: {code}. Check BERTH_SLUG_STORE and the S3 credentials, "
                                 "then try again.") from None
    except BotoCoreError as error:
        raise StorageUnavailable(f"The slug store (bucket {location.bucket} at {_shown(location)}) could "
                                 f"not be reached to {what} ({type(error).__name__}). Try again in a "
                                 "moment; if it persists, the operator must check the S3 server.") from None


def listed(location: S3Location, client: Any, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object under `prefix` (a key prefix inside the location), page by page."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.key(prefix))
    iterator = iter(pages)
    while True:
        page = guarded(location, "list objects", lambda: next(iterator, None))
        if page is None:
            return
        yield from page.get("Contents", [])


def _shown(location: S3Location) -> str:
    scheme, host, port = location.origin()
    return f"{scheme}://{host}:{port}"
