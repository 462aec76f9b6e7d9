"""Uploaded source blobs, kept as files under the data dir (no table: a source is a blob and who
made it, read by id only, and gone a day after it was last used).

    $BERTH_DATA_DIR/sources/<id>/record.json   {"id", "owner_id", "created_at"}; its mtime: last use
    $BERTH_DATA_DIR/sources/<id>/blob          the upload, as the client sent it (absent until PUT)

An upload streams into a temporary file beside the blob and replaces it atomically once whole,
so a reader (a build, a GET) sees the previous upload or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from berth.config import Settings
from berth.db import utcnow

UNUSED_LIFETIME_SECONDS = 24 * 3600  # a source nobody created, uploaded or fetched for a day goes
COLLECT_EVERY_SECONDS = 600          # how often POST /sources looks for such sources
CHUNK = 256 * 1024
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class UploadTooLarge(Exception):
    """The client sent more bytes than the limit allows."""


class UploadIncomplete(Exception):
    """The client sent fewer bytes than it announced."""


@dataclass(frozen=True)
class SourceRecord:
    id: str
    owner_id: str
    created_at: datetime
    directory: Path

    @property
    def blob(self) -> Path:
        return self.directory / "blob"

    @property
    def uploaded(self) -> bool:
        return self.blob.is_file()


class SourceStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, settings: Settings) -> "SourceStore":
        return cls(settings.data_dir / "sources")

    def create(self, owner_id: str) -> SourceRecord:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        source_id, created_at = str(uuid.uuid4()), utcnow()
        directory = self.root / source_id
        directory.mkdir(mode=0o700)
        _write_private(directory / "record.json", json.dumps(
            {"id": source_id, "owner_id": owner_id, "created_at": created_at.isoformat()}).encode())
        return SourceRecord(source_id, owner_id, created_at, directory)

    def get(self, source_id: str) -> SourceRecord | None:
        if not _ID.match(source_id):
            return None
        directory = self.root / source_id
        try:
            saved = json.loads((directory / "record.json").read_bytes())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        return SourceRecord(source_id, saved["owner_id"], datetime.fromisoformat(saved["created_at"]), directory)

    def receive(self, record: SourceRecord, stream: IO[bytes], length: int, max_bytes: int) -> str:
        """Stores `length` bytes from `stream` as the blob; returns their sha256 (hex). Raises
        UploadTooLarge or UploadIncomplete, leaving the previous blob (if any) in place."""
        if length > max_bytes:
            raise UploadTooLarge()
        digest = hashlib.sha256()
        fd, partial = tempfile.mkstemp(prefix="blob.", suffix=".partial", dir=record.directory)
        try:
            with open(fd, "wb") as out:
                received = 0
                while received < length:
                    chunk = stream.read(min(CHUNK, length - received))
                    if not chunk:
                        raise UploadIncomplete()
                    received += len(chunk)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, record.blob)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        self.touch(record)
        return digest.hexdigest()

    def touch(self, record: SourceRecord) -> None:
        """Marks the source used now: it is kept for another UNUSED_LIFETIME_SECONDS."""
        try:
            os.utime(record.directory / "record.json")
        except FileNotFoundError:
            pass  # collected meanwhile; the caller already holds what it needs

    def collect(self, now: float | None = None) -> list[str]:
        """Removes the sources unused for a day (and any directory left without a record); their ids."""
        now = time.time() if now is None else now
        removed = []
        for directory in self.root.glob("*-*-*-*-*"):
            try:
                last_use = (directory / "record.json").stat().st_mtime
            except FileNotFoundError:
                last_use = directory.stat().st_mtime  # a create interrupted before its record
            if now - last_use > UNUSED_LIFETIME_SECONDS:
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory.name)
        return removed

    def collect_if_due(self) -> None:
        """`collect`, at most once every COLLECT_EVERY_SECONDS (shared by every process)."""
        marker = self.root / ".collected"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if time.time() - marker.stat().st_mtime < COLLECT_EVERY_SECONDS:
                return
        except FileNotFoundError:
            pass
        _write_private(marker, b"")
        self.collect()


def _write_private(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with open(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
