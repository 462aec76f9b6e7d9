"""The embedded cluster Berth owns when no Postgres server is configured: created once, started
idempotently, restarted by `supervise` after it was killed, and used by the provider."""
from __future__ import annotations

import os
import pwd
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet

from berth import crypto
from berth.addons.postgres import embedded
from berth.addons.postgres.cluster import LocalPostgres
from berth.addons.postgres.provider import PostgresProvider
from berth.broker.partner_api.provider import ProvisionRequest
from berth.config import Settings
from berth.db import Database, new_id


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'control.sqlite3'}")
    yield settings
    embedded.stop(settings)


def postmaster_pid(settings: Settings) -> int:
    return int((embedded.root(settings) / "cluster" / "postmaster.pid").read_text().splitlines()[0])


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")


@pytest.mark.slow
def test_embedded_cluster_is_created_once_and_restarted_when_killed(settings: Settings) -> None:
    with ThreadPoolExecutor(3) as pool:  # the lock: one initdb and one start, whoever asks
        urls = set(pool.map(lambda _: embedded.ensure_embedded(settings), range(3)))
    [url] = urls
    port = int((embedded.root(settings) / "port").read_text())
    assert port in embedded.PORTS and f"@127.0.0.1:{port}/" in url
    with psycopg.connect(url, connect_timeout=5) as admin:
        assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    assert embedded.ensure_embedded(settings) == url  # already running: the same cluster, no new initdb
    if os.geteuid() == 0:  # its own account, never root nor Debian's `postgres` (nor a dedicated one's)
        account = pwd.getpwnam("berth-postgres")
        status = Path(f"/proc/{postmaster_pid(settings)}/status").read_text()
        assert f"Uid:\t{account.pw_uid}\t" in status
        assert (embedded.root(settings) / "cluster").stat().st_uid == account.pw_uid

    pid = postmaster_pid(settings)
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    embedded.supervise(settings)
    assert postmaster_pid(settings) != pid
    with psycopg.connect(url, connect_timeout=5) as admin:  # same port, same password
        assert admin.execute("SELECT 1").fetchone() == (1,)

    # The provider with no BERTH_POSTGRES_SERVERS places databases on it.
    crypto.configure([Fernet.generate_key().decode()])
    database = Database(settings.database_url)
    database.migrate(settings.data_dir)
    provider = PostgresProvider(database, settings)
    made = provider.provision(ProvisionRequest(uuid=new_id(), plan="essential-0", region="local"))
    assert f"@127.0.0.1:{port}/" in made.config["DATABASE_URL"]
    with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):  # only its own database
        psycopg.connect(made.config["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres", connect_timeout=5)
    embedded.stop(settings)  # down: the provider starts it again rather than failing
    assert not LocalPostgres(embedded.root(settings) / "cluster", port=port).is_running()
    assert provider.deprovision(made.id) is True
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(made.config["DATABASE_URL"], connect_timeout=5)
    database.dispose()
