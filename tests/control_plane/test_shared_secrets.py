"""Installation secrets on a PostgreSQL control plane are the database's, not each node's data dir:
two nodes with data dirs of their own sign sessions and derive provider passwords alike."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from berth import crypto
from berth.addons.secrets import provider_password
from berth.config import Settings
from berth.db import Database
from berth.installation_secrets import _shared, installation_secret
from berth.web import _session_secret
from tests.conftest import TEST_KEY


def node(tmp_path: Path, name: str, url: str) -> Settings:
    return Settings(data_dir=tmp_path / name, database_url=url, secret_keys=(TEST_KEY,))


def fresh_secrets(url: str, tmp_path: Path) -> Database:
    """The control plane with no installation secret yet, and none cached in this process."""
    crypto.configure([TEST_KEY])
    database = Database(url)
    database.migrate(tmp_path)
    with database.write_engine.begin() as connection:
        connection.execute(text("DELETE FROM installation_secrets"))
    _shared.cache_clear()
    return database


def test_two_nodes_share_the_session_key_and_provider_passwords(postgres_database_url: str, tmp_path: Path) -> None:
    database = fresh_secrets(postgres_database_url, tmp_path)
    a, b = node(tmp_path, "a", postgres_database_url), node(tmp_path, "b", postgres_database_url)
    assert _session_secret(a) == _session_secret(_other_process(b))
    assert provider_password(a, "postgresql") == provider_password(_other_process(b), "postgresql")
    # stored encrypted, never as the bytes themselves
    with database.write_engine.begin() as connection:
        stored = connection.execute(text("SELECT value FROM installation_secrets WHERE name = 'session'")).scalar_one()
    assert stored.startswith("gAAAA")
    database.dispose()


def test_an_earlier_nodes_key_file_seeds_the_shared_secret(postgres_database_url: str, tmp_path: Path) -> None:
    database = fresh_secrets(postgres_database_url, tmp_path)
    upgraded = node(tmp_path, "old", postgres_database_url)
    upgraded.data_dir.mkdir()
    (upgraded.data_dir / "session.key").write_bytes(b"k" * 32)  # what an earlier Berth made here
    assert installation_secret(upgraded, "session") == b"k" * 32
    _shared.cache_clear()
    assert installation_secret(node(tmp_path, "new", postgres_database_url), "session") == b"k" * 32
    database.dispose()


def _other_process(settings: Settings) -> Settings:
    """Another node: no value of this process's cache may answer for it."""
    _shared.cache_clear()
    return settings
