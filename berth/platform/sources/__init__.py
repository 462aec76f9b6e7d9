"""Source blobs for builds and app setups: uploads through POST /sources (store), fetching a
`source_blob.url` (fetch), and unpacking the tarball safely (extract).

    fetcher = SourceFetcher.from_settings(settings)
    fetcher.check(url, checksum, account_id=user_id)                 # at the API edge: 422 early
    tarball = fetcher.fetch(url, checksum, account_id=user_id, dest=work / "source.tgz")
    extract(tarball, work / "app", limits_from(settings))            # SourceError: print, fail build
"""
from __future__ import annotations

from pathlib import Path

from berth.config import Settings
from berth.platform.sources.archive import ArchiveLimits, extract
from berth.platform.sources.errors import SourceError
from berth.platform.sources.fetch import SourceFetcher, parse_checksum


def limits_from(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(max_bytes=settings.source_unpacked_max_bytes, max_files=settings.source_max_files)


def fetch(url: str, checksum: str | None = None, *, settings: Settings, account_id: str, dest: Path) -> Path:
    """SourceFetcher.from_settings(settings).fetch(...): see there."""
    return SourceFetcher.from_settings(settings).fetch(url, checksum, account_id=account_id, dest=dest)


__all__ = ["ArchiveLimits", "SourceError", "SourceFetcher", "extract", "fetch", "limits_from", "parse_checksum"]
