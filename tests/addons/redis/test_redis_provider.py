"""The Redis add-on against real redis-server processes, reached with redis-py as an app would."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from berth.addons import resources
from berth.addons.models import ProviderResource
from berth.addons.redis import instances
from berth.addons.redis.plans import MB, PLANS, client_limits
from berth.addons.redis.provider import RedisProvider
from berth.broker.partner_api.manifest import load_manifest
from berth.broker.partner_api.provider import ProviderError, ProvisionRequest
from berth.certificates import installation_ca
from berth.db import new_id
from berth.supervise import ports, processes
from berth.supervise.accounts import service_account

pytestmark = pytest.mark.slow


def request(plan: str = "mini", uuid: str | None = None, **options: str) -> ProvisionRequest:
    return ProvisionRequest(uuid=uuid or new_id(), plan=plan, region="local", options=options)


def client(url: str) -> "redis.Redis[bytes]":
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def info(url: str, section: str) -> dict[str, Any]:
    with client(url) as tenant:
        return tenant.info(section)


def rows(env: Any) -> list[ProviderResource]:
    with env.database.session(write=False) as session:
        return list(session.query(ProviderResource).all())


# -- manifest ----------------------------------------------------------------------------------

def test_manifest_is_a_valid_partner_manifest(env: Any) -> None:
    document = env.provider().manifest()
    document["api"]["password"] = "dummy-password"
    document["api"]["production"] = {"base_url": "http://127.0.0.1:5000/providers/redis",
                                     "sso_url": "http://127.0.0.1:5000/providers/redis/sso"}
    document["api"]["sso_salt"] = "dummy-salt"
    manifest = load_manifest(document)
    assert manifest["id"] == "redis" and manifest["name"] == "Heroku-style Redis"
    assert manifest["api"]["config_vars_prefix"] == "REDIS"
    assert manifest["api"]["config_vars"] == ["REDIS_URL", "REDIS_TLS_URL"]
    assert manifest["api"]["requires"] == ["many_per_app", "attachable", "grants"]
    assert manifest["categories"] == ["Data Stores"]
    plans = {plan["name"]: plan for plan in manifest["plans"]}
    assert list(plans) == ["mini", "premium-0", "premium-1", "premium-2"]
    assert [name for name, plan in plans.items() if plan["default"]] == ["mini"]
    assert plans["mini"]["price"]["cents"] == 300
    assert all(plan["description"] for plan in plans.values())
    assert {"name": "Memory", "value": "250 MB"} in plans["premium-2"]["features"]
    assert {"name": "Largest value", "value": "3.125 MB"} in plans["mini"]["features"]


# -- provision ---------------------------------------------------------------------------------

def test_provision_gives_a_url_an_app_can_use(env: Any) -> None:
    provider = env.provider()
    req = request()
    provisioned = provider.provision(req)
    assert provisioned.id == req.uuid
    assert list(provisioned.config) == ["REDIS_URL", "REDIS_TLS_URL"]
    url = provisioned.config["REDIS_URL"]
    details = provider.details(req.uuid)
    assert url == f"redis://:{details['password']}@127.0.0.1:{details['port']}"
    assert len(details["password"]) >= 32 and details["state"] == "active"
    with client(url) as tenant:
        tenant.set("greeting", "hello")
        assert tenant.get("greeting") == b"hello"
    memory, clients = info(url, "memory"), info(url, "clients")
    assert memory["maxmemory"] == 25 * MB and memory["maxmemory_policy"] == "noeviction"
    assert clients["maxclients"] == 20
    assert info(url, "persistence")["aof_enabled"] == 0
    # The secret is in a private file, never on a command line.
    conf = instances.config_path(env.settings, req.uuid)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    pid = instances.pid(env.settings, req.uuid)
    assert pid and details["password"].encode() not in open(f"/proc/{pid}/cmdline", "rb").read()
    # The record's details are encrypted at rest.
    with env.database.autocommit() as connection:
        stored = connection.exec_driver_sql("SELECT details FROM provider_resources").scalar_one()
    assert details["password"] not in stored


def test_premium_plan_persists_and_option_sets_the_policy(env: Any) -> None:
    url = env.provider().provision(request("premium-1", maxmemory_policy="allkeys-lru")).config["REDIS_URL"]
    memory = info(url, "memory")
    assert memory["maxmemory"] == 100 * MB and memory["maxmemory_policy"] == "allkeys-lru"
    assert info(url, "clients")["maxclients"] == 80
    assert info(url, "persistence")["aof_enabled"] == 1


def test_provision_is_idempotent(env: Any) -> None:
    provider = env.provider()
    req = request()
    first = provider.provision(req)
    pid = instances.pid(env.settings, req.uuid)
    assert provider.provision(req) == first
    assert provider.provision(replace(req, plan="premium-0")) == first  # the uuid decides
    assert instances.pid(env.settings, req.uuid) == pid
    assert len(rows(env)) == 1


def test_a_provision_interrupted_after_the_record_is_finished_by_the_next_call(
        env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = env.provider()
    req = request()

    def crash(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt("the worker died")

    with monkeypatch.context() as patch:
        patch.setattr(instances, "start", crash)
        with pytest.raises(KeyboardInterrupt):
            provider.provision(req)
    recorded = provider.details(req.uuid)
    assert recorded["state"] == "creating"
    assert not instances.is_running(env.settings, req.uuid)

    url = provider.provision(req).config["REDIS_URL"]
    finished = provider.details(req.uuid)
    assert finished["state"] == "active"
    assert (finished["port"], finished["password"]) == (recorded["port"], recorded["password"])
    with client(url) as tenant:
        assert tenant.ping()

    # Interrupted after the start, before `active`: the next call adopts the running server.
    pid = instances.pid(env.settings, req.uuid)
    with env.database.transaction() as session:
        resources.find(session, "redis", req.uuid).state = "creating"  # type: ignore[union-attr]
    assert provider.provision(req).config["REDIS_URL"] == url
    assert provider.details(req.uuid)["state"] == "active"
    assert instances.pid(env.settings, req.uuid) == pid


def test_a_port_taken_before_the_start_moves_the_new_instance(
        env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.create_server(("127.0.0.1", 0))
    port = squatter.getsockname()[1]
    try:
        # The squatter arrives between reservation and start: the bind check is fooled once.
        real_can_bind = ports.can_bind
        fooled = iter([True])
        monkeypatch.setattr(ports, "can_bind",
                            lambda host, p, **how: next(fooled, None) or real_can_bind(host, p, **how))
        provider = env.provider(ports=range(port, port + 50))
        url = provider.provision(request()).config["REDIS_URL"]
        assert f":{port}" not in url
        with client(url) as tenant:
            assert tenant.ping()
    finally:
        squatter.close()


def test_concurrent_provisions_get_distinct_ports(env: Any) -> None:
    provider = env.provider()
    urls: list[str] = []
    errors: list[BaseException] = []

    def provision() -> None:
        try:
            urls.append(provider.provision(request()).config["REDIS_URL"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=provision) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({url.rsplit(":", 1)[1] for url in urls}) == 4
    for url in urls:
        with client(url) as tenant:
            assert tenant.ping()


@pytest.mark.parametrize("plan, options, status", [
    ("enterprise", {}, 422),
    ("mini", {"maxmemory_policy": "evict-everything"}, 422),
    ("mini", {"version": "7"}, 422),
])
def test_a_bad_plan_or_option_is_refused_and_nothing_is_created(
        env: Any, plan: str, options: dict[str, str], status: int) -> None:
    with pytest.raises(ProviderError) as refused:
        env.provider().provision(request(plan, **options))
    assert refused.value.status == status
    assert rows(env) == []
    assert not instances.root(env.settings).exists() or not [
        p for p in instances.root(env.settings).iterdir() if not p.name.startswith(".")]


def test_an_id_that_is_not_a_uuid_is_refused(env: Any) -> None:
    with pytest.raises(ProviderError) as refused:
        env.provider().provision(request(uuid="../../etc"))
    assert refused.value.status == 422 and rows(env) == []


# -- isolation and limits ----------------------------------------------------------------------

def test_tenants_are_isolated(env: Any) -> None:
    provider = env.provider()
    a, b = request(), request()
    url_a = provider.provision(a).config["REDIS_URL"]
    url_b = provider.provision(b).config["REDIS_URL"]
    details_a, details_b = provider.details(a.uuid), provider.details(b.uuid)
    assert details_a["port"] != details_b["port"]
    assert instances.pid(env.settings, a.uuid) != instances.pid(env.settings, b.uuid)
    with client(url_a) as tenant_a, client(url_b) as tenant_b:
        tenant_a.set("key", "a")
        tenant_b.set("key", "b")
        assert (tenant_a.get("key"), tenant_b.get("key")) == (b"a", b"b")
        assert tenant_b.dbsize() == 1
    stolen = f"redis://:{details_a['password']}@127.0.0.1:{details_b['port']}"
    with pytest.raises(redis.AuthenticationError), client(stolen) as intruder:
        intruder.get("key")
    # Berth's admin user of A does not open B either.
    wrong_admin = instances.admin_client({**details_b, "admin_password": details_a["admin_password"]})
    with pytest.raises(redis.AuthenticationError):
        wrong_admin.ping()
    wrong_admin.close()


def test_maxmemory_is_enforced_with_noeviction(env: Any) -> None:
    tiny = {"mini": replace(PLANS["mini"], memory_mb=2)}
    url = env.provider(plans=tiny).provision(request()).config["REDIS_URL"]
    assert info(url, "memory")["maxmemory"] == 2 * MB
    value = b"x" * 64 * 1024
    with client(url) as tenant:
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            for i in range(200):  # 12.5 MB if nothing stopped it
                tenant.set(f"k{i}", value)
        stored = tenant.dbsize()
        assert 0 < stored < 40
        assert tenant.get("k0") == value  # noeviction: nothing was dropped


def test_a_tenant_cannot_change_limits_or_administer_the_server(env: Any) -> None:
    url = env.provider().provision(request()).config["REDIS_URL"]
    with client(url) as tenant:
        for command in (("CONFIG", "SET", "maxmemory", "0"), ("CONFIG", "GET", "maxmemory"),
                        ("CONFIG", "SET", "maxclients", "10000"), ("ACL", "SETUSER", "me", "on"),
                        ("ACL", "LIST"), ("SHUTDOWN", "NOSAVE"), ("REPLICAOF", "127.0.0.1", "1"),
                        ("DEBUG", "SLEEP", "0"), ("MODULE", "LIST")):
            with pytest.raises(redis.ResponseError):
                tenant.execute_command(*command)
        assert tenant.ping()
        assert tenant.flushdb() and tenant.info("server")  # ordinary commands still work
    assert info(url, "memory")["maxmemory"] == 25 * MB


# -- plan changes and policy -------------------------------------------------------------------

def test_change_plan_resizes_the_running_instance_and_keeps_data(env: Any) -> None:
    provider = env.provider()
    req = request()
    url = provider.provision(req).config["REDIS_URL"]
    pid = instances.pid(env.settings, req.uuid)
    with client(url) as tenant:
        tenant.set("kept", "yes")
    assert provider.change_plan(req.uuid, "premium-2") is None
    assert instances.pid(env.settings, req.uuid) == pid  # same process: no restart
    assert info(url, "memory")["maxmemory"] == 250 * MB
    assert info(url, "clients")["maxclients"] == 200
    assert info(url, "persistence")["aof_enabled"] == 1
    with client(url) as tenant:
        assert tenant.get("kept") == b"yes"
    details = provider.details(req.uuid)
    assert details["plan"] == "premium-2" and details["maxmemory"] == 250 * MB
    conf = instances.config_path(env.settings, req.uuid).read_text()
    assert f"maxmemory {250 * MB}" in conf and "appendonly yes" in conf
    # The client buffer limits follow the plan's memory, on the running server and in its file.
    bigger = client_limits(250 * MB)
    with instances.admin_client(details) as admin:
        assert admin.config_get("proto-max-bulk-len")["proto-max-bulk-len"] == str(bigger.value_bytes)
        assert admin.config_get("maxmemory-clients")["maxmemory-clients"] == str(bigger.all_clients_bytes)
    assert f"client-query-buffer-limit {bigger.input_bytes}" in conf

    assert provider.change_plan(req.uuid, "mini") is None
    assert info(url, "memory")["maxmemory"] == 25 * MB
    assert info(url, "persistence")["aof_enabled"] == 0
    with client(url) as tenant:
        assert tenant.get("kept") == b"yes"


def test_change_plan_refuses_a_plan_smaller_than_the_data(env: Any) -> None:
    plans = {"big": replace(PLANS["mini"], name="big", memory_mb=16),
             "small": replace(PLANS["mini"], name="small", memory_mb=1.5, default=False)}
    provider = env.provider(plans=plans)
    req = request("big")
    url = provider.provision(req).config["REDIS_URL"]
    with client(url) as tenant:
        for i in range(40):
            tenant.set(f"k{i}", b"x" * 64 * 1024)
    with pytest.raises(ProviderError) as refused:
        provider.change_plan(req.uuid, "small")
    assert refused.value.status == 422 and "MB" in refused.value.message
    assert provider.details(req.uuid)["plan"] == "big"
    assert info(url, "memory")["maxmemory"] == 16 * MB
    with client(url) as tenant:
        assert tenant.dbsize() == 40


def test_change_plan_errors(env: Any) -> None:
    provider = env.provider()
    req = request()
    provider.provision(req)
    with pytest.raises(ProviderError) as unknown_plan:
        provider.change_plan(req.uuid, "enterprise")
    assert unknown_plan.value.status == 422
    with pytest.raises(ProviderError) as unknown_addon:
        provider.change_plan(new_id(), "premium-0")
    assert unknown_addon.value.status == 404


def test_set_maxmemory_policy(env: Any) -> None:
    provider = env.provider()
    req = request()
    url = provider.provision(req).config["REDIS_URL"]
    provider.set_maxmemory_policy(req.uuid, "volatile-ttl")
    assert info(url, "memory")["maxmemory_policy"] == "volatile-ttl"
    assert provider.details(req.uuid)["maxmemory_policy"] == "volatile-ttl"
    assert "maxmemory-policy volatile-ttl" in instances.config_path(env.settings, req.uuid).read_text()
    with pytest.raises(ProviderError) as bad:
        provider.set_maxmemory_policy(req.uuid, "random")
    assert bad.value.status == 422
    with pytest.raises(ProviderError) as unknown:
        provider.set_maxmemory_policy(new_id(), "allkeys-lru")
    assert unknown.value.status == 404


# -- deprovision -------------------------------------------------------------------------------

def test_deprovision_stops_the_server_and_removes_its_files(env: Any) -> None:
    provider = env.provider()
    req = request("premium-0")
    url = provider.provision(req).config["REDIS_URL"]
    pid = instances.pid(env.settings, req.uuid)
    directory = instances.instance_dir(env.settings, req.uuid)
    assert directory.is_dir()
    with client(url) as tenant:
        tenant.set("secret", "data")
    assert provider.deprovision(req.uuid) is True
    assert pid is not None and not processes.alive(pid)
    assert not directory.exists()
    with pytest.raises(redis.ConnectionError), client(url) as tenant:
        tenant.get("secret")
    details = provider.details(req.uuid)
    assert details["state"] == "deleted" and "password" not in details
    assert provider.deprovision(req.uuid) is False
    assert provider.deprovision(new_id()) is False
    with pytest.raises(ProviderError) as gone:
        provider.change_plan(req.uuid, "premium-1")
    assert gone.value.status == 404
    with pytest.raises(ProviderError) as reused:
        provider.provision(req)
    assert reused.value.status == 422
    assert not directory.exists()


# -- supervision -------------------------------------------------------------------------------

def test_supervise_restarts_a_killed_instance_with_its_data(env: Any) -> None:
    provider = env.provider()
    persistent, volatile = request("premium-0"), request("mini")
    url_p = provider.provision(persistent).config["REDIS_URL"]
    url_v = provider.provision(volatile).config["REDIS_URL"]
    for url in (url_p, url_v):
        with client(url) as tenant:
            tenant.set("kept", "yes")
    assert instances.supervise(env.settings, env.database) == []
    for req in (persistent, volatile):
        pid = instances.pid(env.settings, req.uuid)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while processes.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not instances.is_running(env.settings, req.uuid)

    assert sorted(instances.supervise(env.settings, env.database)) == sorted([persistent.uuid, volatile.uuid])
    with client(url_p) as tenant:
        assert tenant.get("kept") == b"yes"  # AOF
    with client(url_v) as tenant:
        assert tenant.ping() and tenant.get("kept") is None  # mini keeps nothing
    assert instances.supervise(env.settings, env.database) == []


def test_supervise_leaves_deleted_and_unfinished_records_alone(env: Any) -> None:
    provider = env.provider()
    req = request()
    provider.provision(req)
    provider.deprovision(req.uuid)
    assert instances.supervise(env.settings, env.database) == []
    assert not instances.instance_dir(env.settings, req.uuid).exists()


def test_stop_all_stops_every_instance_and_provision_restarts_one(env: Any) -> None:
    provider = env.provider()
    reqs = [request(), request("premium-0")]
    urls = [provider.provision(req).config["REDIS_URL"] for req in reqs]
    with client(urls[1]) as tenant:
        tenant.set("kept", "yes")
    assert sorted(instances.stop_all(env.settings, env.database)) == sorted(req.uuid for req in reqs)
    assert not any(instances.is_running(env.settings, req.uuid) for req in reqs)
    assert instances.stop_all(env.settings, env.database) == []
    assert provider.provision(reqs[1]).config["REDIS_URL"] == urls[1]  # idempotent start
    with client(urls[1]) as tenant:
        assert tenant.get("kept") == b"yes"


def test_start_is_idempotent_and_stop_reports_what_it_did(env: Any) -> None:
    provider = env.provider()
    req = request()
    provider.provision(req)
    details = provider.details(req.uuid)
    assert instances.start(env.settings, req.uuid, details) is False
    assert instances.stop(env.settings, req.uuid) is True
    assert instances.stop(env.settings, req.uuid) is False
    assert instances.start(env.settings, req.uuid, details) is True
    assert isinstance(provider, RedisProvider)


# -- who the server runs as --------------------------------------------------------------------

def test_the_server_runs_as_its_own_account_never_root(env: Any) -> None:
    """When Berth is root, redis-server runs as `berth-redis` (else as Berth's own user), in a
    0700 directory of that account, and still keeps its AOF (a premium plan) there."""
    account = service_account(instances.ACCOUNT)
    req = request("premium-0")
    url = env.provider().provision(req).config["REDIS_URL"]
    with client(url) as tenant:
        tenant.set("kept", "yes")
    server = psutil.Process(instances.pid(env.settings, req.uuid))
    assert set(server.uids()) == {account.uid} and set(server.gids()) == {account.gid}
    if os.geteuid() == 0:
        assert account.uid != 0 and account.name == "berth-redis"
    directory = instances.instance_dir(env.settings, req.uuid)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    owners = {path.relative_to(directory): path.lstat().st_uid for path in [directory, *directory.rglob("*")]}
    assert set(owners.values()) == {account.uid}, owners
    assert Path("appendonlydir") in owners  # the server could write its AOF there
    with client(url) as tenant:
        assert tenant.get("kept") == b"yes"


def test_a_symlink_planted_in_the_servers_directory_leads_nowhere(env: Any, tmp_path: Path) -> None:
    """The server's account owns its directory, so a compromised server could plant symlinks
    there; Berth (perhaps root) rewrites the config and reads the log without following them."""
    provider = env.provider()
    req = request()
    url = provider.provision(req).config["REDIS_URL"]
    instances.stop(env.settings, req.uuid)
    directory = instances.instance_dir(env.settings, req.uuid)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    for name in ("redis.conf.tmp", "redis.log"):
        (directory / name).unlink(missing_ok=True)
        (directory / name).symlink_to(victim)
    os.mkfifo(directory / "redis.pid")
    refused = None
    try:
        instances.start(env.settings, req.uuid, provider.details(req.uuid), timeout=5)
    except instances.InstanceError as exc:  # the server cannot open its log: that is its own loss
        refused = str(exc)
    assert victim.read_text() == "precious\n"
    assert refused is None or "precious" not in refused
    assert not instances.config_path(env.settings, req.uuid).is_symlink()
    if refused is None:
        assert client(url).ping()


# -- TLS ---------------------------------------------------------------------------------------

def test_the_tls_url_is_encrypted_and_verifies_with_the_installation_ca(env: Any) -> None:
    provider = env.provider()
    req = request()
    config = provider.provision(req).config
    details = provider.details(req.uuid)
    assert config["REDIS_TLS_URL"] == f"rediss://:{details['password']}@127.0.0.1:{details['tls_port']}"
    assert details["tls_port"] != details["port"]
    ca_file = str(installation_ca(env.settings.data_dir).cert_path)
    with redis.Redis.from_url(config["REDIS_TLS_URL"], ssl_ca_certs=ca_file, socket_timeout=5) as tenant:
        tenant.set("secret", "over tls")
        assert tenant.get("secret") == b"over tls"
        assert tenant.connection_pool.get_connection()._sock.version() in ("TLSv1.2", "TLSv1.3")
    with client(config["REDIS_URL"]) as plain:  # the same server, the same data
        assert plain.get("secret") == b"over tls"
    # A client that trusts only its system CAs refuses the server: the certificate is Berth's.
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        redis.Redis.from_url(config["REDIS_TLS_URL"], socket_timeout=5).ping()
    # The TLS port speaks only TLS: a plain client gets nothing from it.
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=details["tls_port"], password=details["password"], socket_timeout=2).ping()
    directory = instances.instance_dir(env.settings, req.uuid)
    assert stat.S_IMODE((directory / "tls.key").stat().st_mode) == 0o600


def test_a_new_installation_ca_gets_the_instance_a_new_certificate_on_restart(env: Any) -> None:
    provider = env.provider()
    req = request()
    config = provider.provision(req).config
    instances.stop(env.settings, req.uuid)
    shutil.rmtree(env.settings.data_dir / "ca")  # the operator replaced the CA
    instances.start(env.settings, req.uuid, provider.details(req.uuid))
    ca_file = str(installation_ca(env.settings.data_dir).cert_path)
    with redis.Redis.from_url(config["REDIS_TLS_URL"], ssl_ca_certs=ca_file, socket_timeout=5) as tenant:
        assert tenant.ping()


def test_a_tls_port_taken_before_the_start_moves_the_new_instance(
        env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(20):  # a squatted port whose neighbour below is free, for the plain port
        squatter = socket.create_server(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        if ports.can_bind("127.0.0.1", port - 1):
            break
        squatter.close()
    try:
        # The squatter arrives between reservation and start: the bind check is fooled once.
        real_can_bind, fooled = ports.can_bind, {port}
        monkeypatch.setattr(ports, "can_bind", lambda host, p, **how: p in fooled and not fooled.remove(p)
                            or real_can_bind(host, p, **how))
        provider = env.provider(ports=range(port - 1, port + 50))
        req = request()
        config = provider.provision(req).config
        details = provider.details(req.uuid)
        assert port not in (details["port"], details["tls_port"])
        assert config["REDIS_TLS_URL"].endswith(f":{details['tls_port']}")
        ca_file = str(installation_ca(env.settings.data_dir).cert_path)
        with redis.Redis.from_url(config["REDIS_TLS_URL"], ssl_ca_certs=ca_file, socket_timeout=5) as tenant:
            assert tenant.ping()
    finally:
        squatter.close()


def non_loopback_address() -> str:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    pytest.fail("this machine has no IPv4 address beside loopback to listen on")


def test_off_loopback_an_instance_speaks_only_tls(env: Any) -> None:
    """With BERTH_REDIS_HOST on a real interface nothing may travel in clear: no plain port,
    REDIS_URL is rediss:// too, and Berth itself (start, resize, restart) goes over TLS."""
    host = non_loopback_address()
    provider = RedisProvider(env.database, env.settings.with_overrides(redis_host=host))
    req = request("premium-0")  # AOF: the data outlives the restart below
    config = provider.provision(req).config
    details = provider.details(req.uuid)
    assert config["REDIS_URL"] == config["REDIS_TLS_URL"] == \
        f"rediss://:{details['password']}@{host}:{details['tls_port']}"
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=host, port=details["port"], password=details["password"], socket_timeout=2).ping()
    ca_file = str(installation_ca(env.settings.data_dir).cert_path)
    with redis.Redis.from_url(config["REDIS_URL"], ssl_ca_certs=ca_file, socket_timeout=5) as tenant:
        tenant.set("kept", "yes")
    provider.change_plan(req.uuid, "premium-1")  # Berth's admin connection, over TLS
    pid = instances.pid(env.settings, req.uuid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while processes.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert instances.supervise(env.settings, env.database) == [req.uuid]  # its PING goes over TLS
    with redis.Redis.from_url(config["REDIS_URL"], ssl_ca_certs=ca_file, socket_timeout=5) as tenant:
        assert tenant.info("memory")["maxmemory"] == 100 * MB and tenant.get("kept") == b"yes"


def test_a_lost_tls_key_is_issued_again_at_the_next_start(env: Any) -> None:
    provider = env.provider()
    req = request()
    config = provider.provision(req).config
    instances.stop(env.settings, req.uuid)
    (instances.instance_dir(env.settings, req.uuid) / "tls.key").unlink()
    instances.start(env.settings, req.uuid, provider.details(req.uuid))
    ca_file = str(installation_ca(env.settings.data_dir).cert_path)
    with redis.Redis.from_url(config["REDIS_TLS_URL"], ssl_ca_certs=ca_file, socket_timeout=5) as tenant:
        assert tenant.ping()


# -- grants: an ACL user per OSB binding --------------------------------------------------------

def refused(url: str) -> bool:
    try:
        with client(url) as session:
            session.ping()
    except (redis.exceptions.AuthenticationError, redis.exceptions.ConnectionError, redis.exceptions.ResponseError):
        return True
    return False


def test_a_grant_has_the_tenants_rights_and_its_revocation_ends_it_alone(env: Any) -> None:
    provider = env.provider()
    made = provider.provision(request())
    own = made.config["REDIS_URL"]
    first = provider.grant(made.id, "binding-1")
    second = provider.grant(made.id, "binding-2")
    assert set(first) == set(made.config) and first["REDIS_URL"] != second["REDIS_URL"] != own
    assert first["REDIS_URL"].startswith("redis://berth-grant-")
    assert provider.grant(made.id, "binding-1") == first  # idempotent on the grant id
    bound = client(first["REDIS_URL"])
    with pytest.raises(redis.exceptions.NoPermissionError):
        bound.execute_command("CONFIG", "SET", "maxmemory", "0")  # the tenant's rights, no more

    pid = instances.pid(env.settings, made.id)  # a restart keeps the grants (redis.conf lists them)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while processes.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert instances.supervise(env.settings, env.database) == [made.id]
    bound = client(first["REDIS_URL"])
    bound.set("greeting", "from a binding")  # mini keeps no data across the restart: set after it

    assert provider.revoke(made.id, "binding-1") is True
    with pytest.raises(redis.exceptions.ConnectionError):
        bound.ping()  # its open connection was closed
    assert refused(first["REDIS_URL"])
    with client(own) as tenant, client(second["REDIS_URL"]) as other:
        assert tenant.get("greeting") == other.get("greeting") == b"from a binding"
    assert provider.revoke(made.id, "binding-1") is False
    first_user = first["REDIS_URL"].split("//")[1].split(":")[0]
    assert first_user not in instances.render_config(env.settings, made.id, provider.details(made.id))
    with pytest.raises(ProviderError) as unknown:
        provider.grant(new_id(), "binding-1")
    assert unknown.value.status == 404
    assert provider.deprovision(made.id) is True
    assert refused(second["REDIS_URL"])
