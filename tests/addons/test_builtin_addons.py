"""The first-party add-ons end to end: in the catalogue on a fresh start, served as partners under
/providers, provisioned through the Platform API by the worker over HTTP, and used with the real
client libraries through the config vars Berth injects."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
import requests

from berth.addons.postgres.cluster import LocalPostgres
from berth.broker.partner_api.client import ProviderClient
from berth.broker.partner_api.conformance import run_conformance
from berth.builtin_addons import build_providers, full_manifest
from berth.platform.logs import store
from berth.outbound import TargetPolicy
from berth.platform.logs.forwarder import Forwarder
from tests.builtin_platform import BuiltinPlatform as Platform
from tests.builtin_platform import builtin_platform, server_database
from tests.kafka_clients import consume, produce
from tests.live_server import live_server


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres) -> Iterator[Platform]:
    with builtin_platform(tmp_path_factory.mktemp("builtin"), postgres_server.admin_url(),
                          "builtin@example.com") as running:
        yield running


@pytest.fixture
def app_name(platform: Platform, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t{abs(hash(request.node.name)) % 10**8}"
    assert platform.call("POST", "/apps", name=name).status_code == 201
    yield name
    platform.call("DELETE", f"/apps/{name}")


def test_the_catalogue_has_the_builtin_services_with_herokus_names(platform: Platform) -> None:
    names = {s["name"] for s in platform.call("GET", "/addon-services").json()}
    assert {"postgresql", "redis", "kafka", "logs"} <= names
    for alias, name in (("heroku-postgresql", "postgresql"), ("heroku-redis", "redis"), ("heroku-kafka", "kafka")):
        assert platform.call("GET", f"/addon-services/{alias}").json()["name"] == name
    plans = platform.call("GET", "/addon-services/postgresql/plans").json()
    assert any(p["default"] for p in plans) and all(p["price"]["unit"] for p in plans)


@pytest.mark.parametrize("auth", [None, ("postgresql", "wrong"), ("other", "x")])
def test_provider_endpoints_need_the_manifest_password(platform: Platform, auth: tuple[str, str] | None) -> None:
    answer = requests.post(f"{platform.server.url}/providers/postgresql/heroku/resources", auth=auth,
                           json={"uuid": "0b5e8f5e-0000-4000-8000-000000000001", "plan": "essential-0"},
                           timeout=10)
    assert answer.status_code == 401 and answer.json() == {"message": "Invalid credentials."}
    with_api_key = requests.post(f"{platform.server.url}/providers/postgresql/heroku/resources",
                                 headers={"Authorization": f"Bearer {platform.key}"}, json={}, timeout=10)
    assert with_api_key.status_code == 401


def test_postgres_addon_gives_a_working_database_url(platform: Platform, app_name: str) -> None:
    addon = platform.provision(app_name, "heroku-postgresql")
    assert addon["state"] == "provisioned", addon
    url = platform.config(app_name)["DATABASE_URL"]
    assert url.startswith("postgres://")
    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute("CREATE TABLE notes (body text)")
        connection.execute("INSERT INTO notes VALUES ('hello')")
        assert connection.execute("SELECT body FROM notes").fetchall() == [("hello",)]
    assert platform.call("DELETE", f"/apps/{app_name}/addons/{addon['id']}").status_code == 200
    assert "DATABASE_URL" not in platform.config(app_name)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()


def test_redis_addon_gives_a_working_redis_url(platform: Platform, app_name: str) -> None:
    addon = platform.provision(app_name, "heroku-redis")
    assert addon["state"] == "provisioned", addon
    url = platform.config(app_name)["REDIS_URL"]
    client = redis.Redis.from_url(url, socket_timeout=5)
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"
    client.close()
    assert platform.call("DELETE", f"/apps/{app_name}/addons/{addon['id']}").status_code == 200
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(url, socket_timeout=2).ping()


def test_a_bad_plan_is_refused_and_nothing_is_created(platform: Platform, app_name: str) -> None:
    answer = platform.call("POST", f"/apps/{app_name}/addons", plan="postgresql:enormous")
    assert answer.status_code == 404 and answer.json()["id"] == "not_found"
    assert platform.call("GET", f"/apps/{app_name}/addons").json() == []


@pytest.mark.parametrize("service, plan, other_plan", [
    ("postgresql", "essential-0", "essential-1"), ("redis", "mini", "premium-0"), ("logs", "free", "basic"),
    pytest.param("kafka", "basic-0", "basic-1", marks=pytest.mark.slow)])
def test_builtin_providers_pass_the_conformance_suite(platform: Platform, service: str, plan: str,
                                                      other_plan: str) -> None:
    settings, database = server_database(platform.server)
    provider = build_providers(database, settings)[service]
    report = run_conformance(full_manifest(provider, settings), plan=plan, other_plan=other_plan,
                             sso=service == "logs", client=ProviderClient.for_settings(settings))
    assert report.passed, report.render()


def test_logs_addon_receives_the_apps_stream_and_finds_it(platform: Platform, app_name: str) -> None:
    addon = platform.provision(app_name, "logs")
    assert addon["state"] == "provisioned", addon
    [drain] = platform.call("GET", f"/apps/{app_name}/log-drains").json()
    assert drain["addon"]["name"] == addon["name"]
    settings, database = server_database(platform.server)
    app_id = platform.call("GET", f"/apps/{app_name}").json()["id"]
    with database.transaction() as session:  # as the runtime will write it, once it exists
        store.append(session, app_id, [store.Entry("app", "web.1", "GET /checkout 500"),
                                       store.Entry("heroku", "router", "at=error code=H12")])
    forwarder = Forwarder(database, TargetPolicy.from_settings(settings))
    assert forwarder.deliver_once() == 2  # the drain process's work, done once here
    logs_url = urlsplit(platform.config(app_name)["LOGS_URL"])
    found = requests.get(f"{platform.server.url}{logs_url.path}/lines", params={"q": "checkout"},
                         auth=(logs_url.username, logs_url.password), timeout=10)
    assert [line["message"] for line in found.json()["lines"]] == ["GET /checkout 500"]


def test_no_builtin_add_ons_when_switched_off(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:  # the test servers run with BERTH_BUILTIN_ADDONS=0
        key = server.create_user("plain@example.com")
        assert server.api("GET", "/addon-services", key).json() == []
        assert requests.post(f"{server.url}/providers/postgresql/heroku/resources", timeout=10).status_code == 404


def test_redis_actions_through_the_platform_api(platform: Platform, app_name: str) -> None:
    addon = platform.provision(app_name, "heroku-redis")
    path = f"/apps/{app_name}/addons/{addon['id']}/actions"
    assert platform.call("POST", f"{path}/maxmemory", params={"policy": "allkeys-lru"}).status_code == 200
    info = platform.call("POST", f"{path}/info")
    assert info.status_code == 200 and info.json()["result"]["maxmemory_policy"] == "allkeys-lru"
    assert "password" not in info.text.lower()
    client = redis.Redis.from_url(platform.config(app_name)["REDIS_URL"], socket_timeout=5)
    with pytest.raises(redis.exceptions.ResponseError):
        client.config_get("maxmemory-policy")  # the tenant cannot look, let alone change it
    client.close()
    bad = platform.call("POST", f"{path}/maxmemory", params={"policy": "whatever"})
    assert bad.status_code == 422 and "allkeys-lru" in bad.json()["message"]
    assert platform.call("POST", f"{path}/explode").status_code == 404
    assert platform.call("POST", f"/apps/{app_name}/addons/no-such-addon/actions/info").status_code == 404


def test_postgres_backups_and_credential_rotation_through_the_platform_api(platform: Platform,
                                                                          app_name: str) -> None:
    addon = platform.provision(app_name, "heroku-postgresql")
    path = f"/apps/{app_name}/addons/{addon['id']}/actions"
    url = platform.config(app_name)["DATABASE_URL"]
    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute("CREATE TABLE orders (id int)")
        connection.execute("INSERT INTO orders VALUES (1), (2)")
    info = platform.call("POST", f"{path}/info").json()["result"]
    assert info["plan"] == "essential-0" and 0 < info["storage_used_bytes"] < info["storage_limit_bytes"]

    captured = platform.call("POST", f"{path}/backups-capture")
    assert captured.status_code == 200 and captured.json()["result"]["id"] == "b001"
    assert [b["id"] for b in platform.call("POST", f"{path}/backups-list").json()["result"]] == ["b001"]
    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute("DELETE FROM orders")
    assert platform.call("POST", f"{path}/backups-restore", params={"backup": "b001"}).status_code == 200
    with psycopg.connect(url, connect_timeout=5) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone() == (2,)
    assert platform.call("POST", f"{path}/backups-restore", params={"backup": "b999"}).status_code == 422

    download = platform.call("POST", f"{path}/backups-url", params={"backup": "b001"}).json()["result"]["url"]
    dump = requests.get(download, timeout=10)
    assert dump.status_code == 200 and dump.content.startswith(b"PGDMP")
    assert requests.get(download[:-3] + "xyz", timeout=10).status_code == 404

    rotated = platform.call("POST", f"{path}/credentials-rotate")
    assert rotated.status_code == 200
    new_url = platform.config(app_name)["DATABASE_URL"]
    assert new_url != url
    newest = platform.server.api("GET", f"/apps/{app_name}/releases", platform.key,
                                 headers={"Range": "version ..; order=desc, max=1"}).json()[0]
    assert newest["description"] == "Update DATABASE by postgresql"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    with psycopg.connect(new_url, connect_timeout=5) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone() == (2,)


def test_a_database_over_its_storage_is_restricted_and_the_app_is_told(platform: Platform,
                                                                       app_name: str) -> None:
    from berth.addons.postgres.provider import PostgresProvider

    addon = platform.provision(app_name, "heroku-postgresql")
    url = platform.config(app_name)["DATABASE_URL"]
    settings, database = server_database(platform.server)
    strict = PostgresProvider(database, settings, limits_bytes={"essential-0": 1})  # any data is too much
    changes = [c for c in strict.enforce_storage_limits() if c.uuid == addon["id"]]
    assert [c.restricted for c in changes] == [True]
    strict.notify_storage_changes(changes)
    with psycopg.connect(url, connect_timeout=5) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("CREATE TABLE more (id int)")
    relaxed = PostgresProvider(database, settings)
    back = [c for c in relaxed.enforce_storage_limits() if c.uuid == addon["id"]]
    assert [c.restricted for c in back] == [False]
    relaxed.notify_storage_changes(back)
    session = platform.call("POST", f"/apps/{app_name}/log-sessions", lines=50).json()
    lines = requests.get(session["logplex_url"], timeout=10).text
    assert "write access revoked" in lines and "write access restored" in lines
    assert f"{addon['name']}[postgresql]" in lines


@pytest.mark.slow  # the first Kafka add-on starts the embedded broker (a JVM)
def test_kafka_addon_gives_working_mtls_credentials_and_managed_topics(platform: Platform,
                                                                        app_name: str) -> None:
    addon = platform.provision(app_name, "heroku-kafka")
    assert addon["state"] == "provisioned", addon
    config = platform.config(app_name)
    assert config["KAFKA_URL"].startswith("kafka+ssl://") and config["KAFKA_PREFIX"].endswith(".")
    assert "BEGIN CERTIFICATE" in config["KAFKA_CLIENT_CERT"] and "PRIVATE KEY" in config["KAFKA_CLIENT_CERT_KEY"]
    path = f"/apps/{app_name}/addons/{addon['id']}/actions"
    created = platform.call("POST", f"{path}/topics-create", params={"name": "events", "partitions": 2})
    assert created.status_code == 200, created.text
    topic = created.json()["result"]["name"]
    assert topic == config["KAFKA_PREFIX"] + "events"
    assert produce(config, topic, b"order 17 paid") is None
    assert consume(config, topic, config["KAFKA_PREFIX"] + "billing") == b"order 17 paid"
    listed = platform.call("POST", f"{path}/topics-list").json()["result"]
    assert [t["name"] for t in listed] == [topic]
    too_many = platform.call("POST", f"{path}/topics-create", params={"name": "huge", "partitions": 100000})
    assert too_many.status_code == 422
    assert [t["name"] for t in platform.call("POST", f"{path}/topics-list").json()["result"]] == [topic]
    assert platform.call("DELETE", f"/apps/{app_name}/addons/{addon['id']}").status_code == 200
    assert produce(config, topic, b"after the end", timeout_ms=3000) is not None  # no ACLs any more
