"""Every Berth process migrates on start: the log says once that the schema moved, not Alembic's
per-step INFO lines from every worker, builder and runner."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from berth.db import Database


def test_migrating_logs_one_line_and_nothing_when_already_at_head(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = Database(f"sqlite:///{tmp_path / 'berth.sqlite3'}")
    caplog.set_level(logging.INFO)
    try:
        database.migrate(tmp_path)
        first = [record for record in caplog.records if record.levelno < logging.WARNING]
        caplog.clear()
        database.migrate(tmp_path)
        again = [record for record in caplog.records if record.levelno < logging.WARNING]
    finally:
        database.dispose()
    assert not [r for r in first if r.name.startswith("alembic")], [r.getMessage() for r in first]
    ours = [r.getMessage() for r in first]
    assert len(ours) == 1 and ours[0].startswith("Database schema upgraded from (empty) to "), ours
    assert again == []
