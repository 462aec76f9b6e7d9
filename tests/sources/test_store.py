"""The source store's files: private, and collected a day after their last use."""
from __future__ import annotations

import io
import os
import stat
import time
from pathlib import Path

import pytest

from berth.platform.sources.store import SourceStore, UploadIncomplete, UploadTooLarge

DAY = 24 * 3600


def test_sources_unused_for_a_day_are_collected_and_used_ones_kept(tmp_path: Path) -> None:
    store = SourceStore(tmp_path / "sources")
    old, used, fresh = store.create("a"), store.create("a"), store.create("b")
    store.receive(old, io.BytesIO(b"tgz"), 3, 10)
    two_days_ago = time.time() - 2 * DAY
    for record in (old, used):
        os.utime(record.directory / "record.json", (two_days_ago, two_days_ago))
    store.touch(used)  # a build fetched it just now
    assert store.collect() == [old.id]
    assert store.get(old.id) is None and not old.directory.exists()
    assert store.get(used.id) == used and store.get(fresh.id) == fresh
    assert stat.S_IMODE((tmp_path / "sources").stat().st_mode) == 0o700
    assert stat.S_IMODE((fresh.directory / "record.json").stat().st_mode) == 0o600


def test_a_short_or_oversize_upload_leaves_the_previous_blob(tmp_path: Path) -> None:
    store = SourceStore(tmp_path)
    record = store.create("a")
    store.receive(record, io.BytesIO(b"first"), 5, 10)
    with pytest.raises(UploadIncomplete):
        store.receive(record, io.BytesIO(b"shor"), 5, 10)
    with pytest.raises(UploadTooLarge):
        store.receive(record, io.BytesIO(b"x" * 11), 11, 10)
    assert record.blob.read_bytes() == b"first"
    assert sorted(p.name for p in record.directory.iterdir()) == ["blob", "record.json"]
    assert stat.S_IMODE(record.blob.stat().st_mode) == 0o600


@pytest.mark.parametrize("reference", ["../../etc", "", "not-a-uuid", "0" * 36])
def test_ids_that_are_not_a_sources_find_nothing(tmp_path: Path, reference: str) -> None:
    assert SourceStore(tmp_path).get(reference) is None
