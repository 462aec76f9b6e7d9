"""The Postgres add-on provider against a real PostgreSQL server, checked with real clients.

The control plane is SQLite in a temporary directory (one per module); the server is the session's
`postgres_server` cluster, used as an external server (BERTH_POSTGRES_SERVERS mode). Whatever a
test provisions is deprovisioned when it ends."""
from __future__ import annotations

import contextlib
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import errors, sql
from sqlalchemy import delete, event

from berth import crypto
from berth.addons import resources
from berth.addons.models import ACTIVE, CREATING, DELETED, ProviderResource
from berth.addons.postgres import privileged
from berth.addons.postgres.cluster import LocalPostgres
from berth.addons.postgres.plans import PLANS
from berth.addons.postgres.provider import CONFIG_VAR, SERVICE, PostgresProvider, _Resource
from berth.broker.partner_api.manifest import load_manifest
from berth.broker.partner_api.provider import ProviderError, ProvisionRequest
from berth.config import Settings
from berth.db import Database, new_id

KEY = Fernet.generate_key().decode()


@dataclass
class Env:
    settings: Settings
    database: Database
    server: LocalPostgres

    def provider(self, **kwargs: object) -> PostgresProvider:
        return PostgresProvider(self.database, self.settings, **kwargs)  # type: ignore[arg-type]

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.server.admin_url(dbname), autocommit=True, connect_timeout=5)

    def second_server_url(self) -> str:
        """The same cluster under another name: a second location without a second cluster."""
        return self.server.admin_url().replace("@127.0.0.1:", "@localhost:", 1)

    def rows(self) -> list[ProviderResource]:
        with self.database.session(write=False) as session:
            return list(session.query(ProviderResource).order_by(ProviderResource.created_at))


def request(plan: str = "essential-0", uuid: str | None = None, log_input_url: str | None = None,
            **options: str) -> ProvisionRequest:
    return ProvisionRequest(uuid=uuid or new_id(), plan=plan, region="local", options=options,
                            log_input_url=log_input_url)


class LogInput(ThreadingHTTPServer):
    """An app's log input on a loopback port: the notices an add-on posts there."""

    def __init__(self) -> None:
        notices: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                notices.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.notices = notices
        self.url = f"http://token:t.log-token@127.0.0.1:{self.server_address[1]}/logs"


@pytest.fixture(scope="module")
def log_input() -> Iterator[LogInput]:
    server = LogInput()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Database]]:
    data_dir = tmp_path_factory.mktemp("postgres-addon")
    crypto.configure([KEY])
    database = Database(f"sqlite:///{data_dir / 'control.sqlite3'}")
    database.migrate(data_dir)
    yield data_dir, database
    database.dispose()


@pytest.fixture
def env(control_plane: tuple[Path, Database], postgres_server: LocalPostgres) -> Iterator[Env]:
    data_dir, database = control_plane
    crypto.configure([KEY])  # other modules' apps configure their own keys
    settings = Settings(data_dir=data_dir, database_url=database.url, secret_keys=(KEY,),
                        postgres_servers=(postgres_server.admin_url(),))
    env = Env(settings, database, postgres_server)
    yield env
    cleaner = PostgresProvider(database, settings.with_overrides(
        postgres_servers=(postgres_server.admin_url(), env.second_server_url())))
    with database.session(write=False) as session:
        live = [row.id for row in resources.live(session, SERVICE)]
    for uuid in live:
        cleaner.deprovision(uuid)
    with database.transaction() as session:
        session.execute(delete(ProviderResource))

URL = re.compile(r"^postgres://(u_[a-z0-9]{16}):([A-Za-z0-9]{65})@127\.0\.0\.1:(\d+)/(db_[a-z0-9]{16})\Z")


def names(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return unquote(parts.username or ""), parts.path.lstrip("/")


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def role_limit(env: Env, user: str) -> int | None:
    with env.admin() as admin:
        row = admin.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", [user]).fetchone()
    return None if row is None else int(row[0])


def role_superuser(env: Env, user: str) -> bool | None:
    with env.admin() as admin:
        row = admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [user]).fetchone()
    return None if row is None else bool(row[0])


def databases(env: Env) -> set[str]:
    with env.admin() as admin:
        return {row[0] for row in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'db\\_%'")}


def test_the_manifest_is_valid_and_gives_database_url() -> None:
    manifest = PostgresProvider.manifest(None)  # type: ignore[arg-type]
    endpoints = {"base_url": "http://127.0.0.1:5000/providers/postgresql/heroku/resources"}
    manifest["api"].update(password="a-long-dummy-password", production=endpoints, test=endpoints)
    loaded = load_manifest(manifest)
    assert loaded["id"] == "postgresql" and loaded["name"] == "Heroku-style Postgres"
    assert loaded["api"]["config_vars_prefix"] == "DATABASE"
    assert loaded["api"]["config_vars"] == ["DATABASE_URL"]
    assert loaded["api"]["requires"] == ["many_per_app", "log_input", "attachable", "grants"] and loaded["api"]["regions"] == ["*"]
    assert loaded["categories"] == ["Data Stores"]
    plans = {plan["name"]: plan for plan in loaded["plans"]}
    assert list(plans) == ["essential-0", "essential-1", "essential-2", "standard-0"]
    assert [name for name, plan in plans.items() if plan["default"]] == ["essential-0"]
    assert [plans[name]["price"]["cents"] for name in plans] == [500, 900, 2000, 5000]
    assert all(plan["description"] for plan in plans.values())
    assert (PLANS["essential-2"].storage_gb, PLANS["essential-2"].connections) == (32, 40)
    assert (PLANS["standard-0"].storage_gb, PLANS["standard-0"].connections) == (64, 120)
    assert [p.dedicated for p in PLANS.values()] == [False, False, False, True]


def test_provision_gives_a_working_database_url(env: Env) -> None:
    made = env.provider().provision(request())
    url = made.config["DATABASE_URL"]
    assert list(made.config) == ["DATABASE_URL"]
    match = URL.match(url)
    assert match, url
    assert int(match.group(3)) == env.server.port
    with connect(url) as tenant:
        tenant.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
        tenant.execute("INSERT INTO notes (body) VALUES ('hello'), ('world')")
        assert tenant.execute("SELECT body FROM notes ORDER BY id").fetchall() == [("hello",), ("world",)]
        owner = tenant.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                               "WHERE datname = current_database()").fetchone()
        assert owner == (match.group(1),)
    assert role_limit(env, match.group(1)) == 20
    [row] = env.rows()
    assert (row.id, row.state, row.plan, row.location) == (made.id, ACTIVE, "essential-0",
                                                          f"127.0.0.1:{env.server.port}")
    assert match.group(2) not in row.location


def test_tenants_are_isolated(env: Env) -> None:
    provider = env.provider()
    a = provider.provision(request()).config["DATABASE_URL"]
    b = provider.provision(request()).config["DATABASE_URL"]
    b_user, b_db = names(b)
    a_as_b_db = a.rsplit("/", 1)[0] + "/" + b_db
    with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
        connect(a_as_b_db)
    with connect(a) as tenant:
        with pytest.raises(errors.InsufficientPrivilege):
            tenant.execute("CREATE DATABASE stolen")
        with pytest.raises(errors.InsufficientPrivilege):
            tenant.execute("CREATE ROLE intruder")
        with pytest.raises(errors.InsufficientPrivilege):
            tenant.execute(f'ALTER ROLE "{b_user}" PASSWORD \'x\'')
        with pytest.raises(errors.InsufficientPrivilege):
            tenant.execute(f'GRANT "{b_user}" TO CURRENT_USER')


def test_provision_is_idempotent_on_the_uuid(env: Env) -> None:
    provider = env.provider()
    first = provider.provision(request(uuid="7d1f0c1e-1111-4111-8111-000000000001"))
    before = databases(env)
    again = env.provider().provision(request(uuid=first.id))
    assert (again.id, again.config) == (first.id, first.config)
    assert databases(env) == before and len(env.rows()) == 1


def test_concurrent_provisions_of_one_uuid_make_one_database(env: Env) -> None:
    uuid, before = new_id(), databases(env)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: env.provider().provision(request(uuid=uuid)), range(4)))
    assert len({answer.config["DATABASE_URL"] for answer in answers}) == 1
    assert len(databases(env) - before) == 1 and len(env.rows()) == 1


class CrashAfterRole(PostgresProvider):
    """Dies part-way through creating: after the record is committed and the role exists."""

    def _create(self, conn: psycopg.Connection[tuple[object, ...]], resource: _Resource) -> None:
        conn.execute(f'CREATE ROLE "{resource.user}" LOGIN PASSWORD \'not-the-real-one\'')
        raise RuntimeError("the process died here")


def test_an_interrupted_provision_is_finished_by_the_next_call(env: Env) -> None:
    uuid = "7d1f0c1e-2222-4222-8222-000000000002"
    with pytest.raises(RuntimeError):
        CrashAfterRole(env.database, env.settings).provision(request(uuid=uuid))
    [row] = env.rows()
    assert row.state == CREATING
    user, database = resources.details(row)["user"], resources.details(row)["database"]
    assert role_limit(env, user) == -1 and database not in databases(env)
    made = env.provider().provision(request(uuid=uuid))
    assert names(made.config["DATABASE_URL"]) == (user, database)
    assert env.rows()[0].state == ACTIVE and role_limit(env, user) == 20
    with connect(made.config["DATABASE_URL"]) as tenant:  # the recorded password now works
        assert tenant.execute("SELECT current_user").fetchone() == (user,)


@pytest.mark.parametrize("plan, options, message", [
    ("enormous", {}, "Unknown plan 'enormous'; the plans are essential-0, essential-1, essential-2, standard-0."),
    ("essential-0", {"version": "16"}, "Unknown options: version. The postgresql add-on takes no options."),
])
def test_a_bad_plan_or_option_is_refused_and_nothing_is_created(env: Env, plan: str, options: dict[str, str],
                                                                message: str) -> None:
    before = databases(env)
    with pytest.raises(ProviderError) as refused:
        env.provider().provision(request(plan, **options))
    assert (refused.value.status, refused.value.message) == (422, message)
    assert env.rows() == [] and databases(env) == before


def test_deprovision_ends_open_sessions_and_the_credentials(env: Env) -> None:
    provider = env.provider()
    made = provider.provision(request())
    url = made.config["DATABASE_URL"]
    user, database = names(url)
    tenant = connect(url)
    tenant.execute("CREATE TABLE t (x int)")
    elsewhere = connect(url.rsplit("/", 1)[0] + "/postgres")  # this server lets PUBLIC connect there
    assert provider.deprovision(made.id) is True
    for session in (tenant, elsewhere):
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        session.close()
    with pytest.raises(psycopg.OperationalError):
        connect(url)
    assert database not in databases(env) and role_limit(env, user) is None
    assert env.rows()[0].state == DELETED
    assert provider.deprovision(made.id) is False
    assert provider.deprovision("no-such-uuid") is False
    with pytest.raises(ProviderError) as refused:
        provider.provision(request(uuid=made.id))
    assert refused.value.status == 422


def test_a_provision_arriving_after_its_clean_up_deprovision_creates_nothing(env: Env) -> None:
    """Berth gave up waiting for a provision (its server was down) and deprovisioned the add-on to
    clean up, before the provision itself got through: it must not leave a database nobody owns."""
    provider = env.provider()
    late = request()
    before = databases(env)
    assert provider.deprovision(late.uuid) is False  # nothing was there yet
    with pytest.raises(ProviderError) as refused:
        provider.provision(late)
    assert refused.value.status == 422
    assert databases(env) == before
    assert [row.state for row in env.rows() if row.id == late.uuid] == [DELETED]
    assert provider.provision(request()).config["DATABASE_URL"]  # other add-ons still provision


def test_change_plan_moves_the_connection_limit(env: Env) -> None:
    provider = env.provider()
    made = provider.provision(request())
    user, _ = names(made.config["DATABASE_URL"])
    assert provider.change_plan(made.id, "essential-2") is None
    assert role_limit(env, user) == 40 and env.rows()[0].plan == "essential-2"
    assert provider.change_plan(made.id, "essential-2") is None  # the same plan: nothing to do
    assert provider.provision(request(uuid=made.id)).config == made.config
    with pytest.raises(ProviderError) as unknown:
        provider.change_plan("no-such-uuid", "essential-1")
    assert unknown.value.status == 404
    with pytest.raises(ProviderError) as bad:
        provider.change_plan(made.id, "enormous")
    assert bad.value.status == 422
    tiny = env.provider(limits_bytes={"essential-0": 1_000_000})  # less than an empty database
    with pytest.raises(ProviderError) as too_big:
        tiny.change_plan(made.id, "essential-0")
    assert too_big.value.status == 422 and "delete data first" in too_big.value.message
    assert role_limit(env, user) == 40 and env.rows()[0].plan == "essential-2"


def test_a_new_database_goes_to_the_least_loaded_server(env: Env) -> None:
    first, second = env.server.admin_url(), env.second_server_url()
    provider = PostgresProvider(env.database, env.settings.with_overrides(postgres_servers=(first, second)))
    placed = [provider.provision(request()) for _ in range(3)]
    locations = [row.location for row in env.rows()]
    port = env.server.port
    assert locations == [f"127.0.0.1:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    assert urlsplit(placed[1].config["DATABASE_URL"]).hostname == "localhost"
    assert provider.deprovision(placed[0].id)
    fourth = provider.provision(request())
    assert env.rows()[-1].location == f"127.0.0.1:{port}"
    with connect(fourth.config["DATABASE_URL"]) as tenant:
        assert tenant.execute("SELECT 1").fetchone() == (1,)


def test_storage_enforcement_restricts_and_restores(env: Env) -> None:
    made = env.provider().provision(request())
    url = made.config["DATABASE_URL"]
    user, _ = names(url)
    empty = env.provider().storage_used(made.id)
    provider = env.provider(limits_bytes={"essential-0": empty + 1_000_000})
    assert provider.enforce_storage_limits() == []
    with connect(url) as tenant:
        tenant.execute("CREATE TABLE big (body text)")
        tenant.execute("INSERT INTO big SELECT repeat(md5(i::text), 40) FROM generate_series(1, 2000) AS i")
    [change] = provider.enforce_storage_limits()
    assert (change.uuid, change.plan, change.restricted) == (made.id, "essential-0", True)
    assert change.size_bytes > change.limit_bytes == empty + 1_000_000
    assert resources.details(env.rows()[0])["restricted"] is True
    assert provider.enforce_storage_limits() == []  # still over: nothing new

    with connect(url) as tenant:
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            connect(url)
        for statement in ("INSERT INTO big VALUES ('more')", "CREATE TABLE other (x int)",
                          "UPDATE big SET body = 'x'", "GRANT INSERT ON big TO CURRENT_USER"):
            if statement.startswith("GRANT"):  # grants nothing: the tenant no longer owns it
                tenant.execute(statement)
                with pytest.raises(errors.InsufficientPrivilege):
                    tenant.execute("INSERT INTO big VALUES ('more')")
                continue
            with pytest.raises(errors.InsufficientPrivilege):
                tenant.execute(statement)
        assert tenant.execute("SELECT count(*) FROM big").fetchone() == (2000,)
        tenant.execute("DELETE FROM big WHERE body LIKE 'c%'")
        tenant.execute("TRUNCATE big")
        assert tenant.execute("SELECT count(*) FROM big").fetchone() == (0,)

    [change] = provider.enforce_storage_limits()
    assert (change.uuid, change.restricted) == (made.id, False) and change.size_bytes <= change.limit_bytes
    assert resources.details(env.rows()[0])["restricted"] is False
    assert role_limit(env, user) == 20
    with connect(url) as tenant, connect(url):
        tenant.execute("INSERT INTO big VALUES ('back')")
        tenant.execute("CREATE TABLE other (x int)")
        owner = tenant.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'big'").fetchone()
        assert owner == (user,)
    with env.admin() as admin:
        assert admin.execute("SELECT 1 FROM pg_roles WHERE rolname LIKE 'l\\_%'").fetchall() == []


def test_upgrading_a_restricted_database_restores_it_at_once(env: Env) -> None:
    made = env.provider().provision(request())
    url = made.config["DATABASE_URL"]
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})
    [change] = provider.enforce_storage_limits()
    assert change.restricted
    with connect(url) as tenant, pytest.raises(errors.InsufficientPrivilege):
        tenant.execute("CREATE TABLE t (x int)")
    assert provider.change_plan(made.id, "essential-1") is None
    assert resources.details(env.rows()[0])["restricted"] is False and env.rows()[0].plan == "essential-1"
    with connect(url) as tenant:
        tenant.execute("CREATE TABLE t (x int)")
    assert provider.deprovision(made.id)  # a restricted-then-restored database drops cleanly


def test_deprovisioning_a_restricted_database(env: Env) -> None:
    made = env.provider().provision(request())
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})
    assert provider.enforce_storage_limits()[0].restricted
    user, database = names(made.config["DATABASE_URL"])
    assert provider.deprovision(made.id)
    assert database not in databases(env) and role_limit(env, user) is None
    assert role_limit(env, "l_" + user[2:]) is None


def test_rotation_gives_a_new_password_and_ends_the_old_sessions(env: Env) -> None:
    provider = env.provider()
    made = provider.provision(request())
    old = made.config["DATABASE_URL"]
    session = connect(old)
    new_config = provider.rotate_credentials(made.id)
    new = new_config["DATABASE_URL"]
    assert new != old and URL.match(new)
    assert names(new) == names(old)
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(old)
    with connect(new) as tenant:
        assert tenant.execute("SELECT 1").fetchone() == (1,)
    assert provider.provision(request(uuid=made.id)).config == new_config  # the record has it
    with pytest.raises(ProviderError) as unknown:
        provider.rotate_credentials("no-such-uuid")
    assert unknown.value.status == 404


def test_a_broker_without_superuser_provisions_and_deprovisions(env: Env) -> None:
    """A CREATEROLE/CREATEDB broker (an operator's managed server) must join the roles it drops."""
    with env.admin() as admin:
        admin.execute("DROP ROLE IF EXISTS berth_broker")
        admin.execute("CREATE ROLE berth_broker LOGIN CREATEROLE CREATEDB PASSWORD 'broker-password'")
    try:
        broker_url = env.server.admin_url().replace(f"{env.server.superuser}:", "berth_broker:", 1)
        broker_url = re.sub(r"berth_broker:[^@]*@", "berth_broker:broker-password@", broker_url)
        provider = PostgresProvider(env.database, env.settings.with_overrides(postgres_servers=(broker_url,)))
        made = provider.provision(request())
        user, database = names(made.config["DATABASE_URL"])
        tenant = connect(made.config["DATABASE_URL"])
        tenant.execute("CREATE TABLE t (x int)")
        revoked, kept = provider.grant(made.id, "one")[CONFIG_VAR], provider.grant(made.id, "two")[CONFIG_VAR]
        with connect(revoked) as bound:
            bound.execute("CREATE TABLE by_binding (x int)")
        assert provider.revoke(made.id, "one") is True
        assert refused_login(revoked) and role_limit(env, names(revoked)[0]) is None
        with connect(kept) as bound:
            bound.execute("INSERT INTO by_binding VALUES (1)")
        assert provider.deprovision(made.id) is True
        assert refused_login(kept) and role_limit(env, names(kept)[0]) is None
        with pytest.raises(psycopg.OperationalError):
            tenant.execute("SELECT 1")
        tenant.close()
        assert database not in databases(env) and role_limit(env, user) is None
        assert provider.deprovision(made.id) is False
    finally:
        with env.admin() as admin:
            admin.execute("DROP OWNED BY berth_broker")
            admin.execute("DROP ROLE berth_broker")


def plant_superuser_trap(tenant: psycopg.Connection[tuple[object, ...]], user: str, marker: str) -> None:
    """As the tenant: operators of its own that, run by a superuser, make the tenant superuser and
    run a program as the server's OS user (`marker` created in the data directory), then answer as
    the real operators would; its database's search_path puts them before pg_catalog."""
    tenant.execute("CREATE SCHEMA trap")
    tenant.execute(f"""
        CREATE FUNCTION trap.escalate() RETURNS void LANGUAGE plpgsql AS $body$
        BEGIN
            IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
                EXECUTE 'ALTER ROLE "{user}" SUPERUSER';
                EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {marker}''';
            END IF;
        END $body$""")
    tenant.execute("""
        CREATE FUNCTION trap.name_ne(name, name) RETURNS boolean LANGUAGE plpgsql AS $body$
        BEGIN PERFORM trap.escalate(); RETURN pg_catalog.namene($1, $2); END $body$""")
    tenant.execute("""
        CREATE FUNCTION trap.name_not_like(name, text) RETURNS boolean LANGUAGE plpgsql AS $body$
        BEGIN PERFORM trap.escalate(); RETURN pg_catalog.namenlike($1, $2); END $body$""")
    tenant.execute("""
        CREATE FUNCTION trap.size(name) RETURNS bigint LANGUAGE plpgsql AS $body$
        BEGIN PERFORM trap.escalate(); RETURN 0; END $body$""")
    tenant.execute("CREATE OPERATOR trap.<> (LEFTARG = name, RIGHTARG = name, FUNCTION = trap.name_ne)")
    tenant.execute("CREATE OPERATOR trap.!~~ (LEFTARG = name, RIGHTARG = text, FUNCTION = trap.name_not_like)")
    tenant.execute("CREATE FUNCTION trap.pg_database_size(name) RETURNS bigint LANGUAGE sql "
                   "AS 'SELECT trap.size($1)'")
    tenant.execute(f'ALTER DATABASE "{tenant.info.dbname}" SET search_path = trap, pg_catalog')


def test_enforcement_never_runs_a_tenants_operators_as_superuser(env: Env) -> None:
    made = env.provider().provision(request())
    url = made.config["DATABASE_URL"]
    user, _ = names(url)
    marker = f"berth-trap-{made.id}"
    with connect(url) as tenant:
        plant_superuser_trap(tenant, user, marker)
        tenant.execute("CREATE TABLE big (body text)")
        tenant.execute("INSERT INTO big SELECT repeat('x', 1000) FROM generate_series(1, 100)")
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})  # any database is over
    [change] = provider.enforce_storage_limits()
    assert change.restricted
    provider.storage_used(made.id)
    provider.action(made.id, "info", {})
    provider.rotate_credentials(made.id)
    url = env.provider().active(made.id).config()[CONFIG_VAR]
    assert env.provider().enforce_storage_limits()[0].restricted is False  # restored: runs the trap too
    assert role_superuser(env, user) is False
    assert not (env.server.data_dir / marker).exists()
    assert env.provider().deprovision(made.id)


@pytest.mark.parametrize("setting, value", [
    ("default_transaction_read_only", "on"),   # every write of a superuser session fails
    ("role", None),                            # a superuser session becomes the tenant
    ("statement_timeout", "1"),                # every statement is cancelled
    ("lock_timeout", "1"),
])
def test_a_tenants_database_settings_cannot_switch_enforcement_off(env: Env, setting: str,
                                                                 value: str | None) -> None:
    made = env.provider().provision(request())
    url = made.config["DATABASE_URL"]
    user, database = names(url)
    with connect(url) as tenant:
        tenant.execute("CREATE TABLE big (body text)")
        tenant.execute(f'ALTER DATABASE "{database}" SET {setting} = \'{value or user}\'')
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})
    [change] = provider.enforce_storage_limits()
    assert (change.uuid, change.restricted) == (made.id, True)
    # The tenant's own checks escape its trap as Berth's sessions do: with settings at login.
    escaped = {"options": "-c statement_timeout=0 -c lock_timeout=0 -c default_transaction_read_only=off"}
    with psycopg.connect(url, autocommit=True, **escaped) as tenant, pytest.raises(errors.InsufficientPrivilege):
        tenant.execute("INSERT INTO big VALUES ('more')")
    [change] = env.provider().enforce_storage_limits()
    assert (change.uuid, change.restricted) == (made.id, False)
    with psycopg.connect(url, autocommit=True, **escaped) as tenant:
        tenant.execute("INSERT INTO big VALUES ('more')")


GROW = """CREATE FUNCTION grow() RETURNS void LANGUAGE sql SECURITY DEFINER
          AS $$ INSERT INTO big VALUES ('grown') $$"""
WRITES_AS_OWNER = [
    "SELECT grow()",                                       # SECURITY DEFINER: runs as the owner
    "SELECT grant_back(); INSERT INTO big VALUES ('granted')",  # the owner may grant itself anything
    "DELETE FROM fired",                                   # its trigger's function is SECURITY DEFINER
    "DELETE FROM ruled",                                   # a rule's actions run as the table's owner
    "DELETE FROM through_view",                            # an INSTEAD OF trigger on a view
    "SELECT lo_from_bytea(0, '\\x00'::bytea)",             # large objects are anyone's to create
]


def provision_with_grow(env: Env) -> tuple[str, str]:
    """A new add-on whose tenant made table `big` and the SECURITY DEFINER function `grow()`."""
    made = env.provider().provision(request())
    with connect(made.config["DATABASE_URL"]) as tenant:
        tenant.execute("CREATE TABLE big (body text)")
        tenant.execute(GROW)
    return made.id, made.config["DATABASE_URL"]


def test_a_restricted_tenant_cannot_write_through_code_it_owned(env: Env) -> None:
    uuid, url = provision_with_grow(env)
    user, _ = names(url)
    with connect(url) as tenant:
        tenant.execute(f"""CREATE FUNCTION grant_back() RETURNS void LANGUAGE sql SECURITY DEFINER
                           AS $$ GRANT INSERT ON big TO "{user}" $$""")
        tenant.execute("""CREATE FUNCTION grow_on_delete() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
                          AS $$ BEGIN INSERT INTO big VALUES ('fired'); RETURN OLD; END $$""")
        tenant.execute("CREATE TABLE fired (x int)")
        tenant.execute("CREATE TRIGGER grows BEFORE DELETE ON fired FOR EACH ROW EXECUTE FUNCTION grow_on_delete()")
        tenant.execute("CREATE TABLE ruled (x int)")
        tenant.execute("CREATE RULE grows AS ON DELETE TO ruled DO ALSO INSERT INTO big VALUES ('ruled')")
        tenant.execute("CREATE TABLE viewed (x int)")
        tenant.execute("CREATE VIEW through_view AS SELECT x FROM viewed")
        tenant.execute("CREATE TRIGGER grows INSTEAD OF DELETE ON through_view FOR EACH ROW "
                       "EXECUTE FUNCTION grow_on_delete()")
        tenant.execute("INSERT INTO fired VALUES (1); INSERT INTO ruled VALUES (1); INSERT INTO viewed VALUES (1)")
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})
    assert provider.enforce_storage_limits()[0].restricted
    for statement in WRITES_AS_OWNER:
        with connect(url) as tenant:
            with pytest.raises(errors.InsufficientPrivilege):
                tenant.execute(statement)
            assert tenant.execute("SELECT count(*) FROM big").fetchone() == (0,), statement
            assert tenant.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone() == (0,)

    assert env.provider().enforce_storage_limits()[0].restricted is False  # all of it works again
    with connect(url) as tenant:
        for statement in WRITES_AS_OWNER:
            tenant.execute(statement)
        assert tenant.execute("SELECT count(*) FROM big").fetchone() == (5,)
        assert tenant.execute("SELECT count(*) FROM pg_proc WHERE prosecdef AND proowner = "
                              "(SELECT oid FROM pg_roles WHERE rolname = current_user)").fetchone() == (3,)


def login_and_connect(env: Env, user: str, database: str) -> tuple[bool, bool]:
    with env.admin() as admin:
        row = admin.execute("SELECT rolcanlogin, has_database_privilege(rolname, %s, 'CONNECT') "
                            "FROM pg_roles WHERE rolname = %s", [database, user]).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def test_a_failed_enforcement_run_blocks_the_database_and_tells_the_owner(env: Env, log_input: LogInput) -> None:
    made = env.provider().provision(request(log_input_url=log_input.url))
    url = made.config["DATABASE_URL"]
    user, database = names(url)
    log_input.notices.clear()
    # This server lets PUBLIC connect to `postgres`; from there the owner may shut its database to
    # every session, Berth's admin ones included: restricting it cannot work.
    with connect(url.rsplit("/", 1)[0] + "/postgres") as tenant:
        tenant.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})
    [change] = provider.enforce_storage_limits()
    assert (change.uuid, change.restricted, change.blocked) == (made.id, False, True)
    provider.notify_storage_changes([change])
    assert login_and_connect(env, user, database) == (False, False)
    with pytest.raises(psycopg.OperationalError):
        connect(url.rsplit("/", 1)[0] + "/postgres")
    [notice] = log_input.notices
    assert "storage limit could not be enforced" in notice and "connections are blocked" in notice
    assert provider.enforce_storage_limits() == []  # still failing: blocked, and told once

    with env.admin() as admin:  # the operator puts it right; the next run restricts and unblocks
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    [change] = provider.enforce_storage_limits()
    assert (change.restricted, change.blocked) == (True, False)
    assert login_and_connect(env, user, database) == (True, True)
    with connect(url) as tenant, pytest.raises(errors.InsufficientPrivilege):
        tenant.execute("CREATE TABLE t (x int)")
    assert resources.details(env.rows()[0])["blocked"] is False


def test_a_plan_upgrade_unblocks_a_blocked_database(env: Env) -> None:
    made = env.provider().provision(request())
    url = made.config["DATABASE_URL"]
    user, database = names(url)
    with connect(url.rsplit("/", 1)[0] + "/postgres") as tenant:
        tenant.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})
    assert provider.enforce_storage_limits()[0].blocked
    assert provider.change_plan(made.id, "essential-1") is None
    assert login_and_connect(env, user, database) == (True, True)
    assert resources.details(env.rows()[0])["blocked"] is False


def test_a_database_restricted_before_the_lockdown_is_sealed_on_the_next_run(env: Env) -> None:
    uuid, url = provision_with_grow(env)
    _, database = names(url)
    provider = env.provider(limits_bytes={"essential-0": 1_000_000})
    assert provider.enforce_storage_limits()[0].restricted
    with env.admin(database) as admin:  # as an earlier Berth left it: the locker's code still a definer
        admin.execute("ALTER FUNCTION public.grow() SECURITY DEFINER")
        locker = admin.execute("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'grow'").fetchone()
        admin.execute(f'GRANT INSERT ON public.big TO "{locker[0]}"')
    with env.database.transaction() as session:
        row = resources.find(session, SERVICE, uuid)
        assert row is not None
        resources.set_details(row, {k: v for k, v in resources.details(row).items() if k != "definers"})
    assert provider.enforce_storage_limits() == []  # sealed, and nothing new to tell
    with connect(url) as tenant, pytest.raises(errors.InsufficientPrivilege):
        tenant.execute("SELECT grow()")
    assert env.provider().enforce_storage_limits()[0].restricted is False
    with connect(url) as tenant:
        tenant.execute("SELECT grow()")


def test_an_admin_session_without_its_pinned_settings_is_refused(env: Env) -> None:
    made = env.provider().provision(request())
    user, database = names(made.config["DATABASE_URL"])
    with connect(made.config["DATABASE_URL"]) as tenant:
        tenant.execute(f'ALTER DATABASE "{database}" SET role = "{user}"')
    plain = psycopg.connect(env.server.admin_url(database), autocommit=True)
    with pytest.raises(privileged.UnsafeSession):
        privileged.verified(plain)
    assert plain.closed
    with privileged.verified(psycopg.connect(privileged.conninfo(env.server.admin_url(), database))) as pinned:
        assert pinned.execute("SELECT current_user, current_setting('search_path')").fetchone() == \
            (env.server.superuser, "pg_catalog,pg_temp")


# -- grants: credentials of each OSB binding's own ------------------------------------------------

GRANT_URL = re.compile(r"^postgres://(b_[a-z0-9]{16}):([A-Za-z0-9]{65})@127\.0\.0\.1:(\d+)/(db_[a-z0-9]{16})\Z")


def refused_login(url: str) -> bool:
    try:
        connect(url).close()
    except psycopg.OperationalError:
        return True
    return False


def test_a_grant_has_the_addons_rights_and_its_revocation_ends_it_alone(env: Env) -> None:
    provider = env.provider()
    made = provider.provision(request())
    url = made.config[CONFIG_VAR]
    user, database = names(url)
    with connect(url) as tenant:
        tenant.execute("CREATE TABLE t (x int)")
    first = provider.grant(made.id, "binding-1")[CONFIG_VAR]
    second = provider.grant(made.id, "binding-2")[CONFIG_VAR]
    assert GRANT_URL.match(first) and GRANT_URL.match(second) and first != second
    assert names(first)[1] == database
    assert provider.grant(made.id, "binding-1")[CONFIG_VAR] == first  # idempotent on the grant id
    assert role_limit(env, names(first)[0]) == PLANS["essential-0"].connections
    bound = connect(first)
    bound.execute("INSERT INTO t VALUES (1)")
    bound.execute("CREATE TABLE made_by_binding (y int)")
    bound.execute("INSERT INTO made_by_binding VALUES (2)")

    assert provider.revoke(made.id, "binding-1") is True
    with pytest.raises(psycopg.OperationalError):
        bound.execute("SELECT 1")  # its open session was ended
    bound.close()
    assert refused_login(first) and role_limit(env, names(first)[0]) is None
    with connect(url) as tenant, connect(second) as other:
        assert tenant.execute("SELECT y FROM made_by_binding").fetchall() == [(2,)]  # kept, now the add-on's
        owner = tenant.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_binding'").fetchone()
        assert owner == (user,)
        other.execute("INSERT INTO t VALUES (3)")
    assert provider.revoke(made.id, "binding-1") is False
    with pytest.raises(ProviderError) as unknown:
        provider.grant("no-such-uuid", "binding-1")
    assert unknown.value.status == 404


def test_a_grant_repeated_after_an_interruption_repairs_the_role_it_left(env: Env) -> None:
    """A grant interrupted after its role was made (here: the role lost its membership and LOGIN)
    is completed by the repeated call: the same credentials log in with the add-on's rights."""
    provider = env.provider()
    made = provider.provision(request())
    with connect(made.config[CONFIG_VAR]) as tenant:
        tenant.execute("CREATE TABLE t (x int)")
    url = provider.grant(made.id, "binding-1")[CONFIG_VAR]
    role = names(url)[0]
    with env.admin() as admin:
        admin.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(names(made.config[CONFIG_VAR])[0]),
                                                          sql.Identifier(role)))
        admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
    assert refused_login(url)
    assert provider.grant(made.id, "binding-1")[CONFIG_VAR] == url
    with connect(url) as bound:
        bound.execute("INSERT INTO t VALUES (1)")  # a member of the add-on's role again


@contextlib.contextmanager
def round_trips_and_statements(env: Env, provider: PostgresProvider, location: str) -> Iterator[list[int]]:
    """[round trips to the server, control-plane statements] while the block runs: libpq's own
    trace of the pooled admin connection the provider borrows next (a round trip is one Query or
    Execute; psycopg's one-off preparation of a statement run often is left out), and a
    SQLAlchemy listener on the control plane's engines."""
    counted = [0, 0]
    trace = tempfile.TemporaryFile()
    with provider._connect(location) as conn:  # the connection the next borrow takes (last in, first out)
        pgconn = conn.pgconn
    pgconn.trace(trace.fileno())

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        counted[1] += not statement.startswith("BEGIN")  # SQLite's BEGIN IMMEDIATE reaches listeners

    for engine in env.database.engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield counted
    finally:
        for engine in env.database.engines:
            event.remove(engine, "before_cursor_execute", count)
        pgconn.untrace()
        trace.seek(0)
        messages = [line.split("\t") for line in trace.read().decode(errors="replace").splitlines()]
        counted[0] = sum(1 for fields in messages if "F" in fields[:2] and {"Query", "Execute"} & set(fields))
        trace.close()


def test_a_grant_costs_two_round_trips_and_leaves_the_uuid_unlocked(env: Env) -> None:
    """A bind waits on its grant, so the grant is lean: the lock, then the role made, committed
    and the lock released in one round trip (no separate existence check, no unlock on giving
    the connection back); on the control plane, the location read, then one transaction that
    reads the record and adds the grant. A repeated grant writes nothing and makes no role twice."""
    provider = env.provider()
    made = provider.provision(request())
    location = env.rows()[-1].location
    with round_trips_and_statements(env, provider, location) as new:
        url = provider.grant(made.id, "lean")[CONFIG_VAR]
    assert new == [2, 3]  # lock, make+commit+unlock | SELECT location; SELECT, UPDATE
    with round_trips_and_statements(env, provider, location) as repeated:
        assert provider.grant(made.id, "lean")[CONFIG_VAR] == url
    assert repeated == [2, 2]
    with env.admin() as admin:  # nothing holds the uuid's lock once the grant has answered
        key = f"berth-{SERVICE}:{made.id}"
        assert admin.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key]).fetchone() == (True,)
        admin.execute("SELECT pg_advisory_unlock_all()")
    with connect(url) as bound:
        assert bound.execute("SELECT current_user").fetchone() == (names(url)[0],)


def test_revoking_a_grant_escapes_the_traps_its_holder_left(env: Env) -> None:
    """The binding's holder owns objects, holds a lock on them in an open transaction, set default
    privileges, and set database settings (as a member of the owner) that would make any session
    read-only, time out at once or search its own schema first: the revocation still completes,
    hands the objects to the add-on's role and leaves nothing of the role behind."""
    provider = env.provider()
    made = provider.provision(request())
    url = made.config[CONFIG_VAR]
    user, database = names(url)
    granted = provider.grant(made.id, "trapped")[CONFIG_VAR]
    role = names(granted)[0]
    with connect(granted) as holder:
        holder.execute("CREATE SCHEMA trap")
        holder.execute("CREATE TABLE trap.kept (x int)")
        holder.execute("INSERT INTO trap.kept VALUES (1)")
        holder.execute("CREATE FUNCTION trap.pg_terminate_backend(integer) RETURNS boolean LANGUAGE sql "
                       "AS $$ INSERT INTO trap.kept VALUES (666); SELECT true $$")
        holder.execute("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC")
        holder.execute(f"ALTER ROLE \"{role}\" SET search_path = trap, pg_catalog")
        for setting, value in (("search_path", "trap, pg_catalog"), ("default_transaction_read_only", "on"),
                               ("statement_timeout", "1"), ("lock_timeout", "1")):
            holder.execute(f'ALTER DATABASE "{database}" SET {setting} = \'{value}\'')
    locker = psycopg.connect(granted, options="-c default_transaction_read_only=off -c statement_timeout=0")
    locker.execute("LOCK TABLE trap.kept IN ACCESS EXCLUSIVE MODE")  # an open transaction

    assert provider.revoke(made.id, "trapped") is True
    assert refused_login(granted)
    with pytest.raises(psycopg.OperationalError):
        locker.execute("SELECT 1")
    locker.close()
    with env.admin() as admin:
        assert admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchall() == []
    with psycopg.connect(privileged.conninfo(env.server.admin_url(), database), autocommit=True) as admin:
        owners = admin.execute("SELECT DISTINCT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                               "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'trap'").fetchall()
        assert owners == [(user,)]
        assert admin.execute("SELECT x FROM trap.kept").fetchall() == [(1,)]  # no trap function ran


def test_enforcement_restricts_blocks_and_restores_grants_with_their_addon(env: Env) -> None:
    made = env.provider().provision(request())
    url = made.config[CONFIG_VAR]
    granted = env.provider().grant(made.id, "bound")[CONFIG_VAR]
    role = names(granted)[0]
    empty = env.provider().storage_used(made.id)
    provider = env.provider(limits_bytes={"essential-0": empty + 1_000_000})
    with connect(granted) as bound:  # the binding's own table: REASSIGN of the add-on's role misses it
        bound.execute("CREATE TABLE big (body text)")
        bound.execute("INSERT INTO big SELECT repeat(md5(i::text), 40) FROM generate_series(1, 2000) AS i")
    [change] = provider.enforce_storage_limits()
    assert change.restricted is True
    assert role_limit(env, role) == 1
    later = provider.grant(made.id, "while-restricted")[CONFIG_VAR]
    assert role_limit(env, names(later)[0]) == 1
    for credentials in (granted, later, url):
        with connect(credentials) as session:
            for statement in ("INSERT INTO big VALUES ('more')", "CREATE TABLE other (x int)"):
                with pytest.raises(errors.InsufficientPrivilege):
                    session.execute(statement)
            assert session.execute("SELECT count(*) FROM big").fetchone() == (2000,)
    with connect(granted) as bound:
        bound.execute("TRUNCATE big")
    [change] = provider.enforce_storage_limits()
    assert change.restricted is False
    assert role_limit(env, role) == PLANS["essential-0"].connections
    with connect(granted) as bound:
        bound.execute("INSERT INTO big VALUES ('back')")

    with env.admin() as admin:  # a failed restriction blocks every login of the add-on's
        _, database = names(url)
        resource = _Resource.of(env.rows()[-1]) if env.rows()[-1].id == made.id else None
        assert resource is not None
        provider._block(admin, resource)
    assert refused_login(granted) and refused_login(later) and refused_login(url)


def test_deprovision_ends_every_grant(env: Env) -> None:
    provider = env.provider()
    made = provider.provision(request())
    granted = provider.grant(made.id, "bound")[CONFIG_VAR]
    session = connect(granted)
    assert provider.deprovision(made.id) is True
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    assert refused_login(granted) and role_limit(env, names(granted)[0]) is None
    assert provider.revoke(made.id, "bound") is False
    with pytest.raises(ProviderError):
        provider.grant(made.id, "another")


@pytest.fixture(scope="module")
def postgres_control_plane(tmp_path_factory: pytest.TempPathFactory,
                           postgres_server: LocalPostgres) -> Iterator[tuple[Database, str]]:
    """A control plane on PostgreSQL (READ COMMITTED, row locks) rather than SQLite's one writer
    at a time: where a deprovision's read of the record can overlap a grant's transaction."""
    data_dir = tmp_path_factory.mktemp("postgres-addon-pg-control")
    crypto.configure([KEY])
    url = postgres_server.create_database("berth_provider_races")
    database = Database(url.replace("postgresql://", "postgresql+psycopg://", 1))
    database.migrate(data_dir)
    yield database, "berth_provider_races"
    database.dispose()
    postgres_server.drop_database("berth_provider_races")


def lock_waiters(env: Env, datname: str) -> int:
    with env.admin() as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                            [datname]).fetchone()
    return int(row[0]) if row else 0


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_grant_recorded_while_a_deprovision_starts_leaves_no_role_behind(
        env: Env, postgres_control_plane: tuple[Database, str]) -> None:
    """A grant whose record commits after the deprovision read the add-on's record, but before the
    deprovision takes the uuid's lock, still has its login role dropped: the roles are read under
    the lock. Interleaved for real: the test holds the record's row lock, so the grant (holding the
    uuid's lock) and then the deprovision (having read the record) queue behind it in that order."""
    database, datname = postgres_control_plane
    settings = env.settings.with_overrides(database_url=database.url)
    provider = PostgresProvider(database, settings)
    made = provider.provision(request())
    granted: dict[str, str] = {}
    errors_seen: list[BaseException] = []

    def run(action: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                action()
            except BaseException as error:  # noqa: BLE001 (reported by the assertion below)
                errors_seen.append(error)
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    holder = psycopg.connect(env.server.admin_url(datname), connect_timeout=5)
    role = None
    try:
        holder.execute("SELECT id FROM provider_resources WHERE id = %s FOR UPDATE", [made.id])
        grant = run(lambda: granted.update(provider.grant(made.id, "late-binding")))
        wait_for(lambda: lock_waiters(env, datname) == 1, "the grant to wait on the record")
        deprovision = run(lambda: provider.deprovision(made.id))
        wait_for(lambda: lock_waiters(env, datname) == 2, "the deprovision to wait on the record")
        holder.rollback()
        grant.join(30)
        deprovision.join(30)
        assert not grant.is_alive() and not deprovision.is_alive() and not errors_seen, errors_seen
        role = names(granted[CONFIG_VAR])[0]
        assert role_limit(env, role) is None, f"the grant's role {role} was left behind"
        assert refused_login(granted[CONFIG_VAR])
    finally:
        holder.close()
        if role is not None:
            with env.admin() as admin:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        with database.session(write=False) as session:
            live = [row.id for row in resources.live(session, SERVICE)]
        for uuid in live:
            provider.deprovision(uuid)
