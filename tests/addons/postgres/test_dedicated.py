"""The dedicated Postgres plan (`standard-0`): a PostgreSQL cluster of the add-on's own, checked
with real clients. Two dedicated add-ons are made once per module (an initdb costs seconds) and
shared by the tests, which run in order: the last ones deprovision them."""
from __future__ import annotations

import os
import pwd
import re
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import errors

from berth import crypto
from berth.addons import backends, resources
from berth.addons.models import ACTIVE, CREATING, DELETED, DELETING, ProviderResource
from berth.addons.postgres import backups, dedicated, embedded
from berth.addons.postgres.cluster import LocalPostgres
from berth.addons.postgres.provider import SERVICE, PostgresProvider, _Resource
from berth.broker.partner_api.provider import ProviderError, ProvisionRequest
from berth.config import Settings
from berth.db import Database, new_id

pytestmark = pytest.mark.slow

KEY = Fernet.generate_key().decode()
URL = re.compile(r"^postgres://(u_[a-z0-9]{16}):([A-Za-z0-9]{65})@127\.0\.0\.1:(\d+)/(db_[a-z0-9]{16})\Z")


class CrashAfterCluster(PostgresProvider):
    """Dies part-way through creating: the record is committed, the cluster made and the role exists."""

    def _create(self, conn: psycopg.Connection[Any], resource: _Resource) -> None:
        conn.execute(f'CREATE ROLE "{resource.user}" LOGIN PASSWORD \'not-the-real-one\'')
        raise RuntimeError("the process died here")


class CrashAfterStop(PostgresProvider):
    """Dies part-way through deprovisioning: the cluster is stopped, its files are still there."""

    def _remove_dedicated(self, resource: _Resource) -> None:
        dedicated.stop(self.settings, resource.uuid, int(resource.details["port"]), "immediate")
        raise RuntimeError("the process died here")


@dataclass
class Pair:
    settings: Settings            # no BERTH_POSTGRES_SERVERS: embedded mode
    with_servers: Settings        # BERTH_POSTGRES_SERVERS set
    database: Database
    a: str
    b: str
    a_url: str
    b_url: str
    b_first_details: dict[str, Any]

    def provider(self, *, servers: bool = False, **kwargs: Any) -> PostgresProvider:
        return PostgresProvider(self.database, self.with_servers if servers else self.settings, **kwargs)

    def row(self, uuid: str) -> ProviderResource:
        with self.database.session(write=False) as session:
            found = resources.find(session, SERVICE, uuid)
            assert found is not None
            return found

    def cluster(self, uuid: str) -> LocalPostgres:
        port = int(resources.details(self.row(uuid))["port"])
        return LocalPostgres(dedicated.directory(self.settings, uuid) / "cluster", port=port,
                             account=dedicated.account_name(uuid))


def request(uuid: str, plan: str = "standard-0") -> ProvisionRequest:
    return ProvisionRequest(uuid=uuid, plan=plan, region="local")


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres) -> Iterator[Pair]:
    data_dir = tmp_path_factory.mktemp("pg-dedicated")
    crypto.configure([KEY])
    database = Database(f"sqlite:///{data_dir / 'control.sqlite3'}")
    database.migrate(data_dir)
    settings = Settings(data_dir=data_dir, database_url=database.url, secret_keys=(KEY,))
    with_servers = settings.with_overrides(postgres_servers=(postgres_server.admin_url(),))
    provider = PostgresProvider(database, settings)
    a = provider.provision(request(new_id()))
    b_uuid = new_id()
    with pytest.raises(RuntimeError):  # B's first provision dies half-way
        CrashAfterCluster(database, with_servers).provision(request(b_uuid))
    with database.session(write=False) as session:
        first = resources.find(session, SERVICE, b_uuid)
        assert first is not None and first.state == CREATING
        b_first_details = resources.details(first)
    b = PostgresProvider(database, with_servers).provision(request(b_uuid))
    yield Pair(settings, with_servers, database, a.id, b.id, a.config["DATABASE_URL"], b.config["DATABASE_URL"],
               b_first_details)
    crypto.configure([KEY])
    for uuid in (a.id, b.id):
        provider.deprovision(uuid)
    database.dispose()


def test_a_dedicated_addon_gets_its_own_cluster_and_a_working_url(pair: Pair) -> None:
    match = URL.match(pair.a_url)
    assert match, pair.a_url
    port = int(match.group(3))
    assert port in dedicated.PORTS
    row = pair.row(pair.a)
    assert (row.state, row.plan, row.location) == (ACTIVE, "standard-0", f"dedicated:{pair.a}")
    assert pair.cluster(pair.a).is_running()
    assert not embedded.root(pair.settings).exists()  # no shared cluster was needed
    with connect(pair.a_url) as tenant:
        tenant.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
        tenant.execute("INSERT INTO notes (body) VALUES ('hello'), ('world')")
        assert tenant.execute("SELECT body FROM notes ORDER BY id").fetchall() == [("hello",), ("world",)]
        assert tenant.execute("SELECT rolsuper, rolconnlimit FROM pg_roles "
                              "WHERE rolname = current_user").fetchone() == (False, 120)
        assert tenant.execute("SHOW max_connections").fetchone() == (str(120 + dedicated.ADMIN_CONNECTIONS),)
        with pytest.raises(errors.InsufficientPrivilege):
            tenant.execute("CREATE DATABASE stolen")
    with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
        connect(pair.a_url.rsplit("/", 1)[0] + "/postgres")
    assert PostgresProvider(pair.database, pair.with_servers).provision(request(pair.a)).config == \
        {"DATABASE_URL": pair.a_url}


def test_a_dedicated_cluster_serves_tls_verifiable_with_berths_ca(pair: Pair) -> None:
    ca = pair.settings.data_dir / "ca" / "ca.pem"
    with psycopg.connect(pair.a_url, autocommit=True, connect_timeout=5, sslmode="verify-full",
                         sslrootcert=str(ca), host="localhost") as tenant:
        assert tenant.execute("SELECT ssl FROM pg_catalog.pg_stat_ssl "
                              "WHERE pid = pg_catalog.pg_backend_pid()").fetchone() == (True,)


def test_two_dedicated_addons_are_isolated(pair: Pair) -> None:
    a, b = URL.match(pair.a_url), URL.match(pair.b_url)
    assert a and b and a.group(3) != b.group(3)
    a_on_b = f"postgres://{a.group(1)}:{a.group(2)}@127.0.0.1:{b.group(3)}/{b.group(4)}"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(a_on_b)
    with pytest.raises(psycopg.OperationalError):
        connect(a_on_b.rsplit("/", 1)[0] + "/" + a.group(4))


def postmaster_uid(cluster: LocalPostgres) -> int:
    pid = int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def can_read_as(account: pwd.struct_passwd, path: Path) -> bool:
    done = subprocess.run(["cat", str(path)], user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="servers switch to accounts of their own only when Berth is root")
def test_each_dedicated_cluster_runs_as_an_account_of_its_own(pair: Pair) -> None:
    a, b = pair.cluster(pair.a), pair.cluster(pair.b)
    a_account, b_account = (pwd.getpwnam(dedicated.account_name(uuid)) for uuid in (pair.a, pair.b))
    assert len({a_account.pw_uid, b_account.pw_uid, 0, pwd.getpwnam("postgres").pw_uid}) == 4
    for cluster, account in ((a, a_account), (b, b_account)):
        assert postmaster_uid(cluster) == account.pw_uid
        found = cluster.data_dir.stat()
        assert (found.st_uid, stat.S_IMODE(found.st_mode)) == (account.pw_uid, 0o700)
    assert can_read_as(a_account, a.data_dir / "PG_VERSION")
    assert not can_read_as(b_account, a.data_dir / "PG_VERSION")  # B's server cannot reach A's data
    assert not can_read_as(a_account, b.data_dir / "postgresql.conf")
    assert not can_read_as(a_account, b.password_file)


def test_an_interrupted_dedicated_provision_is_finished_with_the_same_config(pair: Pair) -> None:
    first = pair.b_first_details
    assert pair.b_url == (f"postgres://{first['user']}:{first['password']}@127.0.0.1:{first['port']}/"
                          f"{first['database']}")
    assert pair.row(pair.b).state == ACTIVE
    with connect(pair.b_url) as tenant:  # the real password, not the crashed call's
        assert tenant.execute("SELECT current_user").fetchone() == (first["user"],)


def test_moving_between_shared_and_dedicated_is_refused(pair: Pair) -> None:
    provider = pair.provider(servers=True)
    with pytest.raises(ProviderError) as refused:
        provider.change_plan(pair.a, "essential-2")
    assert refused.value.status == 422 and "pg:backups:capture" in str(refused.value)
    shared = provider.provision(request(new_id(), "essential-0"))
    try:
        with pytest.raises(ProviderError) as refused:
            provider.change_plan(shared.id, "standard-0")
        assert refused.value.status == 422 and "pg:backups:restore" in str(refused.value)
        assert pair.row(shared.id).plan == "essential-0" and pair.row(pair.a).plan == "standard-0"
        assert provider.change_plan(pair.a, "standard-0") is None
    finally:
        provider.deprovision(shared.id)
    assert not dedicated.directory(pair.settings, shared.id).exists()
    with connect(pair.a_url) as tenant:
        assert tenant.execute("SELECT count(*) FROM notes").fetchone() == (2,)


def test_actions_rotation_and_storage_enforcement_work_on_a_dedicated_addon(pair: Pair) -> None:
    provider = pair.provider(servers=True)
    info = provider.action(pair.b, "info", {}).result
    assert info["plan"] == "standard-0" and info["server"] == f"dedicated:{pair.b}"
    assert 0 < info["storage_used_bytes"] < info["storage_limit_bytes"] and info["connections"] == 120
    with connect(pair.b_url) as tenant:
        tenant.execute("CREATE TABLE kept (x int)")
        tenant.execute("INSERT INTO kept VALUES (1)")
    backup = provider.action(pair.b, "backups-capture", {}).result
    with connect(pair.b_url) as tenant:
        tenant.execute("DELETE FROM kept")
    provider.action(pair.b, "backups-restore", {"backup": backup["id"]})
    with connect(pair.b_url) as tenant:
        assert tenant.execute("SELECT x FROM kept").fetchall() == [(1,)]
    url = provider.rotate_credentials(pair.b)["DATABASE_URL"]
    assert url != pair.b_url
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pair.b_url)
    pair.b_url = url
    strict = pair.provider(limits_bytes={"standard-0": 1})
    changes = strict.enforce_storage_limits()
    assert sorted((c.uuid, c.restricted) for c in changes) == sorted([(pair.a, True), (pair.b, True)])
    with connect(url) as tenant:
        with pytest.raises(errors.InsufficientPrivilege):
            tenant.execute("CREATE TABLE t (x int)")
    changes = pair.provider().enforce_storage_limits()
    assert sorted((c.uuid, c.restricted) for c in changes) == sorted([(pair.a, False), (pair.b, False)])
    with connect(url) as tenant:
        tenant.execute("CREATE TABLE t (x int)")


def test_supervision_restarts_killed_and_stopped_dedicated_clusters(pair: Pair) -> None:
    cluster = pair.cluster(pair.a)
    pid = int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while cluster.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not cluster.is_running()
    assert dedicated.stop_all(pair.settings, pair.database) == [pair.b]  # A is dead already
    assert not pair.cluster(pair.b).is_running()
    backends.supervise_once(pair.with_servers, pair.database)  # servers configured: no embedded cluster
    assert cluster.is_running() and pair.cluster(pair.b).is_running()
    with connect(pair.a_url) as tenant:
        assert tenant.execute("SELECT count(*) FROM notes").fetchone() == (2,)
    with connect(pair.b_url) as tenant:
        assert tenant.execute("SELECT 1").fetchone() == (1,)
    assert dedicated.supervise(pair.settings, pair.database) == []  # running: nothing to do


def test_deprovision_stops_the_cluster_and_deletes_its_files(pair: Pair) -> None:
    provider = pair.provider()
    tenant = connect(pair.a_url)
    directory = dedicated.directory(pair.settings, pair.a)
    assert provider.deprovision(pair.a) is True
    with pytest.raises(psycopg.OperationalError):
        tenant.execute("SELECT 1")
    tenant.close()
    with pytest.raises(psycopg.OperationalError):
        connect(pair.a_url)
    assert not directory.exists() and pair.row(pair.a).state == DELETED
    if os.geteuid() == 0:  # its account went with it
        with pytest.raises(KeyError):
            pwd.getpwnam(dedicated.account_name(pair.a))
    assert provider.deprovision(pair.a) is False
    with pytest.raises(ProviderError) as refused:
        provider.provision(request(pair.a))
    assert refused.value.status == 422
    assert dedicated.supervise(pair.settings, pair.database) == [] and not directory.exists()


def test_an_interrupted_deprovision_is_finished_by_the_next_call(pair: Pair) -> None:
    with pytest.raises(RuntimeError):
        CrashAfterStop(pair.database, pair.settings).deprovision(pair.b)
    directory: Path = dedicated.directory(pair.settings, pair.b)
    assert pair.row(pair.b).state == DELETING and directory.exists()
    assert dedicated.supervise(pair.settings, pair.database) == []  # never brought back once deleting
    assert not pair.cluster(pair.b).is_running()
    with pytest.raises(ProviderError):  # nor by the provider
        pair.provider().rotate_credentials(pair.b)
    assert pair.provider().deprovision(pair.b) is True
    assert not directory.exists() and pair.row(pair.b).state == DELETED
    assert not backups.directory(pair.settings, pair.b).exists()  # its backups went with it
    assert pair.provider().deprovision(pair.b) is False
    assert dedicated.stop_all(pair.settings, pair.database) == []
