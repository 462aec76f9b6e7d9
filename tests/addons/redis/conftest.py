"""Fixtures for the Redis add-on: a SQLite control plane in tmp_path and real redis-server
processes, every one of them stopped when the test ends."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from berth import crypto
from berth.addons.redis import instances
from berth.addons.redis.provider import RedisProvider
from berth.broker.partner_api.provider import ProvisionRequest
from berth.config import Settings
from berth.db import Database, new_id


@dataclass
class Env:
    settings: Settings
    database: Database

    def provider(self, **kwargs: object) -> RedisProvider:
        return RedisProvider(self.database, self.settings, **kwargs)  # type: ignore[arg-type]


def request(plan: str = "mini", uuid: str | None = None, **options: str) -> ProvisionRequest:
    return ProvisionRequest(uuid=uuid or new_id(), plan=plan, region="local", options=options)


def _leftover_servers(data_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(data_dir) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    crypto.configure(crypto.load_or_create_keys((), data_dir))
    url = f"sqlite:///{data_dir / 'berth.sqlite3'}"
    database = Database(url)
    database.migrate(data_dir)
    settings = Settings(data_dir=data_dir, database_url=url)
    try:
        yield Env(settings, database)
    finally:
        instances.stop_all(settings, database)
        leftovers = _leftover_servers(data_dir)
        for pid in leftovers:  # a test that lost track of a server must not leak it
            os.kill(pid, signal.SIGKILL)
        database.dispose()
        assert not leftovers, f"redis-server processes left running: {leftovers}"
