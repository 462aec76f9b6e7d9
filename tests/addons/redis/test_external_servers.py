"""The Redis add-on on operator-run servers (BERTH_REDIS_SERVERS): one add-on per server, real
redis-server processes started by the test as the operator would run them."""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berth.addons.models import ProviderResource
from berth.addons.redis import external, instances
from berth.addons.redis.plans import MB, PLANS, client_limits
from berth.addons.redis.provider import RedisProvider
from berth.broker.partner_api.provider import ProviderError
from berth.config import load_settings
from tests.addons.redis.conftest import OperatorServer, request

pytestmark = pytest.mark.slow
# redis-py retries a failed command with backoff by default: these tests expect failures at once.
FAST: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5, "retry": Retry(NoBackoff(), 0)}


def provider_on(env: Any, servers: list[OperatorServer], **kwargs: Any) -> RedisProvider:
    settings = env.settings.with_overrides(redis_servers=tuple(server.admin_url for server in servers))
    return RedisProvider(env.database, settings, **kwargs)


def client(url: str) -> "redis.Redis[bytes]":
    return redis.Redis.from_url(url, **FAST)


def rows(env: Any) -> list[ProviderResource]:
    with env.database.session(write=False) as session:
        return list(session.query(ProviderResource).all())


def config_value(server: OperatorServer, name: str) -> str:
    with server.admin() as admin:
        return admin.config_get(name)[name]


def assert_client_limits(server: OperatorServer, maxmemory: int) -> None:
    """The operator's server holds the plan's client buffer limits, not Redis's 1 GB defaults."""
    limits = client_limits(maxmemory)
    assert config_value(server, "proto-max-bulk-len") == str(limits.value_bytes)
    assert config_value(server, "client-query-buffer-limit") == str(limits.input_bytes)
    assert config_value(server, "maxmemory-clients") == str(limits.all_clients_bytes)
    assert config_value(server, "client-output-buffer-limit") == " ".join(
        f"{kind} {limits.output_bytes} 0 0" for kind in ("normal", "slave", "pubsub"))


def test_provision_hands_a_server_to_the_tenant(env: Any, operator_servers: Any) -> None:
    [server] = operator_servers(1)
    stranger = redis.Redis(port=server.port, **FAST)  # logged in as the open `default`
    assert stranger.ping()
    provider = provider_on(env, [server])
    req = request()
    url = provider.provision(req).config["REDIS_URL"]

    details = provider.details(req.uuid)
    assert url == f"redis://:{details['password']}@127.0.0.1:{server.port}"
    assert details["state"] == "active" and len(details["password"]) >= 32
    with client(url) as tenant:
        assert tenant.get("left-from-before") is None  # a server from the pool starts empty
        tenant.set("greeting", "hello")
        assert tenant.get("greeting") == b"hello"
        for command in (("CONFIG", "GET", "maxmemory"), ("CONFIG", "SET", "maxmemory", "0"),
                        ("ACL", "LIST"), ("ACL", "SETUSER", "me", "on"), ("SHUTDOWN", "NOSAVE")):
            with pytest.raises(redis.ResponseError):
                tenant.execute_command(*command)
    # Whoever was connected before the add-on existed is gone, and `default` needs the password.
    with pytest.raises(redis.ConnectionError):
        stranger.ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port, **FAST).ping()
    assert config_value(server, "maxmemory") == str(25 * MB)
    assert config_value(server, "maxclients") == "20"
    assert config_value(server, "maxmemory-policy") == "noeviction"
    assert config_value(server, "appendonly") == "no"
    assert_client_limits(server, 25 * MB)
    assert f"maxmemory {25 * MB // MB}mb" in server.config.read_text()  # kept across its restarts

    [row] = rows(env)
    assert row.location == server.location  # host:port, never the admin URL
    assert server.admin_password not in row.location
    with env.database.autocommit() as connection:
        stored = connection.exec_driver_sql("SELECT details FROM provider_resources").scalar_one()
    assert details["password"] not in stored and server.admin_password not in stored
    assert server.admin_password not in str(details)
    assert not instances.instance_dir(env.settings, req.uuid).exists()  # no local server for it


def test_a_repeated_provision_keeps_the_data(env: Any, operator_servers: Any) -> None:
    provider = provider_on(env, operator_servers(1))
    req = request()
    url = provider.provision(req).config["REDIS_URL"]
    with client(url) as tenant:
        tenant.set("kept", "yes")
    assert provider.provision(req).config["REDIS_URL"] == url
    with client(url) as tenant:
        assert tenant.get("kept") == b"yes"
    assert len(rows(env)) == 1


def test_each_addon_gets_its_own_server_and_the_pool_runs_out(env: Any, operator_servers: Any) -> None:
    first, second = operator_servers(2)
    provider = provider_on(env, [first, second], plans={
        "mini": PLANS["mini"], "premium-1": PLANS["premium-1"]})
    a, b = request(), request("premium-1", maxmemory_policy="allkeys-lru")
    url_a = provider.provision(a).config["REDIS_URL"]
    url_b = provider.provision(b).config["REDIS_URL"]
    assert url_a.endswith(f":{first.port}") and url_b.endswith(f":{second.port}")  # configured order
    with client(url_a) as tenant_a, client(url_b) as tenant_b:
        tenant_b.set("secret", "b's")
        assert tenant_a.get("secret") is None and tenant_a.dbsize() == 0 and tenant_a.keys() == []
    password_a = url_a.split(":")[2].split("@")[0]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=second.port, password=password_a, **FAST).ping()
    assert config_value(second, "maxmemory") == str(100 * MB)
    assert config_value(second, "maxmemory-policy") == "allkeys-lru"
    assert config_value(second, "appendonly") == "yes"

    with pytest.raises(ProviderError) as full:
        provider.provision(request())
    assert full.value.status == 503 and "Redis servers are in use" in str(full.value)
    assert first.admin_password not in str(full.value)
    assert len(rows(env)) == 2  # nothing recorded for the refused add-on


def test_concurrent_provisions_never_share_a_server(env: Any, operator_servers: Any) -> None:
    servers = operator_servers(2)
    provider = provider_on(env, servers)
    urls: list[str] = []
    statuses: list[int] = []

    def provision() -> None:
        try:
            urls.append(provider.provision(request()).config["REDIS_URL"])
        except ProviderError as exc:
            statuses.append(exc.status)

    threads = [threading.Thread(target=provision) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [503, 503]
    assert sorted(url.rsplit(":", 1)[1] for url in urls) == sorted(str(server.port) for server in servers)
    assert len(rows(env)) == 2


def test_deprovision_cuts_the_tenant_off_and_returns_the_server(env: Any, operator_servers: Any) -> None:
    [server] = operator_servers(1)
    provider = provider_on(env, [server])
    old = request()
    old_url = provider.provision(old).config["REDIS_URL"]
    connected = client(old_url)
    connected.set("private", "data")

    assert provider.deprovision(old.uuid) is True
    with pytest.raises(redis.ConnectionError):  # the open connection is closed at once
        connected.get("private")
    with pytest.raises(redis.AuthenticationError):  # and the URL no longer logs in
        client(old_url).ping()
    with server.admin() as admin:
        assert admin.dbsize() == 0
    assert "password" not in provider.details(old.uuid)
    assert provider.deprovision(old.uuid) is False  # idempotent

    new = request()
    new_url = provider.provision(new).config["REDIS_URL"]
    assert new_url != old_url and new_url.endswith(f":{server.port}")
    with client(new_url) as tenant:
        assert tenant.get("private") is None and tenant.ping()
    with pytest.raises(redis.AuthenticationError):
        client(old_url).ping()


def test_an_interrupted_deprovision_is_finished_by_the_next_call(env: Any, operator_servers: Any) -> None:
    [server] = operator_servers(1)
    provider = provider_on(env, [server])
    req = request()
    url = provider.provision(req).config["REDIS_URL"]
    with env.database.transaction() as session:
        session.get(ProviderResource, req.uuid).state = "deleting"  # type: ignore[union-attr]
    with pytest.raises(ProviderError) as taken:  # the server is not free while it may hold data
        provider.provision(request())
    assert taken.value.status == 503
    assert provider.deprovision(req.uuid) is True
    with pytest.raises(redis.AuthenticationError):
        client(url).ping()
    assert provider.provision(request()).config["REDIS_URL"].endswith(f":{server.port}")


def test_change_plan_and_policy_reconfigure_the_server(env: Any, operator_servers: Any) -> None:
    [server] = operator_servers(1)
    plans = {**PLANS, "small": replace(PLANS["mini"], name="small", memory_mb=1.5, default=False)}
    provider = provider_on(env, [server], plans=plans)
    req = request()
    url = provider.provision(req).config["REDIS_URL"]
    with client(url) as tenant:
        for i in range(40):
            tenant.set(f"k{i}", b"x" * 64 * 1024)
    assert provider.change_plan(req.uuid, "premium-2") is None
    assert config_value(server, "maxmemory") == str(250 * MB)
    assert config_value(server, "maxclients") == "200"
    assert config_value(server, "appendonly") == "yes"
    assert_client_limits(server, 250 * MB)
    assert provider.details(req.uuid)["plan"] == "premium-2"

    with pytest.raises(ProviderError) as refused:
        provider.change_plan(req.uuid, "small")
    assert refused.value.status == 422 and "Delete some keys" in str(refused.value)
    assert config_value(server, "maxmemory") == str(250 * MB)

    provider.set_maxmemory_policy(req.uuid, "volatile-ttl")
    assert config_value(server, "maxmemory-policy") == "volatile-ttl"
    assert provider.details(req.uuid)["maxmemory_policy"] == "volatile-ttl"
    with client(url) as tenant:
        assert tenant.get("k0") == b"x" * 64 * 1024


def test_supervise_and_stop_all_leave_operator_servers_alone(env: Any, operator_servers: Any) -> None:
    [server] = operator_servers(1)
    provider = provider_on(env, [server])
    url = provider.provision(request()).config["REDIS_URL"]
    assert instances.supervise(env.settings, env.database) == []
    assert instances.stop_all(env.settings, env.database) == []
    with client(url) as tenant:
        assert tenant.ping()
    server.process.kill()
    server.process.wait()
    assert instances.supervise(env.settings, env.database) == []  # not Berth's to start


def test_local_addons_keep_working_after_servers_are_configured(env: Any, operator_servers: Any) -> None:
    local = env.provider()
    req = request()
    url = local.provision(req).config["REDIS_URL"]
    [server] = operator_servers(1)
    pooled = provider_on(env, [server])
    assert pooled.provision(req).config["REDIS_URL"] == url  # the record decides, not the settings
    assert pooled.provision(request()).config["REDIS_URL"].endswith(f":{server.port}")
    assert pooled.deprovision(req.uuid) is True
    assert not instances.is_running(env.settings, req.uuid)


@pytest.mark.parametrize("url, message", [
    ("redis://default:hunter2@127.0.0.1:6379", "names the user 'default'"),
    ("redis://:hunter2@127.0.0.1:6379", "needs an admin user and password"),
    ("redis://admin@127.0.0.1:6379", "needs an admin user and password"),
    ("http://admin:hunter2@127.0.0.1:6379", "must be redis://"),
    ("redis://admin:hunter2@127.0.0.1:notaport", "invalid port"),
])
def test_a_bad_admin_url_is_refused_clearly(env: Any, url: str, message: str) -> None:
    with pytest.raises(external.ConfigError, match=message) as refused:
        RedisProvider(env.database, env.settings.with_overrides(redis_servers=(url,)))
    assert "hunter2" not in str(refused.value)


def test_the_same_server_twice_is_refused(env: Any) -> None:
    urls = ("redis://admin:pw@127.0.0.1:7000", "redis://other:pw2@127.0.0.1:7000")
    with pytest.raises(external.ConfigError, match="twice"):
        RedisProvider(env.database, env.settings.with_overrides(redis_servers=urls))


def test_settings_read_berth_redis_servers(tmp_path: Any) -> None:
    settings = load_settings({"BERTH_DATA_DIR": str(tmp_path), "BERTH_REDIS_SERVERS":
                              " redis://a:p@h1:6379 ,, redis://a:p@h2:6380 "})
    assert settings.redis_servers == ("redis://a:p@h1:6379", "redis://a:p@h2:6380")
    assert load_settings({"BERTH_DATA_DIR": str(tmp_path)}).redis_servers == ()
    servers = external.parse_servers(settings.redis_servers)
    assert list(servers) == ["h1:6379", "h2:6380"]
    assert "p" not in repr(servers["h1:6379"]).replace("port", "")


def test_grants_on_an_operator_server_are_revoked_alone_and_never_outlive_the_tenant(
        env: Any, operator_servers: Any) -> None:
    [server] = operator_servers(1)
    provider = provider_on(env, [server])
    made = request()
    own = provider.provision(made).config["REDIS_URL"]
    first, second = provider.grant(made.uuid, "one")["REDIS_URL"], provider.grant(made.uuid, "two")["REDIS_URL"]
    bound = client(first)
    bound.set("k", "v")
    assert provider.revoke(made.uuid, "one") is True
    with pytest.raises(redis.ConnectionError):
        bound.get("k")
    with pytest.raises(redis.AuthenticationError):
        client(first).ping()
    with client(own) as tenant, client(second) as other:
        assert tenant.get("k") == other.get("k") == b"v"
    with server.admin() as admin:  # a grant user left by a crash part-way (not in the record)
        admin.execute_command("ACL", "SETUSER", instances.GRANT_PREFIX + "left", "on", ">leftover", "~*", "+@all")
    assert provider.deprovision(made.uuid) is True
    with pytest.raises(redis.AuthenticationError):
        client(second).ping()
    with server.admin() as admin:
        users = [name.decode() for name in admin.execute_command("ACL", "USERS")]
        assert not [name for name in users if name.startswith(instances.GRANT_PREFIX)]
