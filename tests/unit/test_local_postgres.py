"""LocalPostgres against a real throwaway cluster (one per module, ~1 s to create)."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from berth.addons.postgres.cluster import LocalPostgres
from berth.supervise.accounts import remove_service_account


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    # Not under pytest's own temp root: another pytest run resets that root to 0700, which
    # would lock the `postgres` user out of a running cluster.
    with tempfile.TemporaryDirectory(prefix="berth-pg-test-") as directory:
        pg = LocalPostgres(Path(directory) / "data")
        pg.start()
        yield pg
        pg.stop()


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_connect_and_query(cluster: LocalPostgres) -> None:
    assert cluster.is_running()
    assert cluster.host == "127.0.0.1"
    assert scalar(cluster.admin_url(), "SELECT 40 + 2") == 42
    assert scalar(cluster.admin_url(), "SELECT current_user") == "berth"
    assert scalar(cluster.admin_url(), "SHOW listen_addresses") == "127.0.0.1"


def test_create_database_and_connect(cluster: LocalPostgres) -> None:
    url = cluster.create_database("app_one")
    assert url == cluster.admin_url("app_one")
    assert scalar(url, "SELECT current_database()") == "app_one"
    cluster.drop_database("app_one")


def test_drop_database_with_open_connection(cluster: LocalPostgres) -> None:
    url = cluster.create_database("busy")
    with psycopg.connect(url) as held:
        held.execute("SELECT 1")
        cluster.drop_database("busy")
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")  # its backend was terminated by the drop
    remaining = "SELECT count(*) FROM pg_database WHERE datname = 'busy'"
    assert scalar(cluster.admin_url(), remaining) == 0
    cluster.drop_database("busy")  # dropping a missing database is a no-op


def test_wrong_password_is_refused(cluster: LocalPostgres) -> None:
    bad = f"postgresql://berth:not-the-password@127.0.0.1:{cluster.port}/postgres"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5)
    # TCP logins must go through scram, not trust.
    trust_rules = "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'"
    assert scalar(cluster.admin_url(), trust_rules) == 0


@pytest.mark.parametrize(
    "name", ["", "Upper", "1starts_with_digit", "semi;colon", "x" * 64, 'quo"te']
)
def test_bad_database_name_raises(cluster: LocalPostgres, name: str) -> None:
    with pytest.raises(ValueError):
        cluster.create_database(name)
    with pytest.raises(ValueError):
        cluster.drop_database(name)


def test_restart_reuses_password_and_data(cluster: LocalPostgres) -> None:
    url = cluster.create_database("durable")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    cluster.stop()
    assert not cluster.is_running()
    cluster.stop()  # stopping a stopped cluster is harmless

    # A fresh instance on the same data dir finds the persisted password; its
    # first port is occupied, so start() has to retry on another one.
    again = LocalPostgres(cluster.data_dir)
    assert again.admin_url().split("@")[0] == cluster.admin_url().split("@")[0]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", again.port))
        squatter.listen()
        taken = again.port
        again.start()
    assert again.port != taken
    assert scalar(again.admin_url("durable"), "SELECT v FROM kept") == "still here"
    assert Path(f"{cluster.data_dir}.password").stat().st_mode & 0o777 == 0o600
    again.stop()

    cluster.start()
    cluster.drop_database("durable")


def test_stop_after_server_died(cluster: LocalPostgres) -> None:
    pid = int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    cluster.stop()  # must not raise: the server dies mid-stop, leaving a stale postmaster.pid
    assert not cluster.is_running()
    cluster.start()  # and the cluster recovers
    assert scalar(cluster.admin_url(), "SELECT 1") == 1


def test_context_manager_starts_and_stops(cluster: LocalPostgres) -> None:
    cluster.stop()
    with LocalPostgres(cluster.data_dir) as pg:
        assert scalar(pg.admin_url(), "SELECT 1") == 1
    assert not pg.is_running()
    cluster.start()


def test_stop_validates_mode_and_tolerates_missing_cluster(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalPostgres(tmp_path / "never").stop(mode="sideways")
    LocalPostgres(tmp_path / "never").stop()  # never created: nothing to do


@pytest.mark.skipif(os.geteuid() != 0, reason="servers switch to accounts of their own only when Berth is root")
def test_a_cluster_made_under_another_account_is_handed_over_with_its_data() -> None:
    """Clusters made before Berth had accounts of its own ran as Debian's `postgres`."""
    with tempfile.TemporaryDirectory(prefix="berth-pg-handover-") as directory:
        data = Path(directory) / "data"
        before = LocalPostgres(data, account="berth-pg-handover-test")
        try:
            before.start()
            with psycopg.connect(before.admin_url(), autocommit=True) as admin:
                admin.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
            after = LocalPostgres(data, port=before.port)  # the default account, while it runs
            after.start()
            account = pwd.getpwnam(after.account_name)
            assert data.stat().st_uid == account.pw_uid
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            assert f"Uid:\t{account.pw_uid}\t" in Path(f"/proc/{pid}/status").read_text()
            with psycopg.connect(after.admin_url()) as admin:
                assert admin.execute("SELECT x FROM kept").fetchall() == [(7,)]
        finally:
            LocalPostgres(data, port=before.port).stop()  # whoever runs it
            remove_service_account("berth-pg-handover-test")


def test_the_server_log_is_never_read_through_a_planted_symlink(tmp_path: Path) -> None:
    """The log lies in the server account's directory; its tail goes into Berth's error messages."""
    secret = tmp_path / "root-only"
    secret.write_text("root's secret\n")
    cluster = LocalPostgres(tmp_path / "cluster")
    cluster.log_file.parent.mkdir(parents=True)
    cluster.log_file.symlink_to(secret)
    assert cluster._read_log() == ""
    cluster.log_file.unlink()
    cluster.log_file.write_text("FATAL: something real\n")
    assert cluster._read_log() == "FATAL: something real\n"
    assert cluster._read_log(7) == "something real\n"
