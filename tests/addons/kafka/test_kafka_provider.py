"""The Kafka add-on against one real single-node KRaft broker (started once for the module's
session): provisioning, mTLS clients with the injected config, tenant isolation by prefixed ACLs,
topic limits, plan changes, deprovisioning, and the broker's supervision."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from cryptography import x509

from berth import crypto
from berth.addons.kafka import broker, ca
from berth.addons.kafka.plans import DAY_MS, DEFAULT_PLAN, PLANS, Plan
from berth.addons.kafka.provider import KafkaProvider, describe_user_quotas
from berth.broker.partner_api.manifest import load_manifest
from berth.broker.partner_api.provider import ProviderError, ProvisionRequest
from berth.config import Settings
from berth.db import Database, new_id
from tests.builtin_platform import let_service_accounts_in
from tests.kafka_clients import client_config, consume, produce


@dataclass
class Env:
    settings: Settings
    database: Database
    provider: KafkaProvider
    keys: list[str]
    start_seconds: float

    def provision(self, plan: str = "basic-0", uuid: str | None = None) -> tuple[str, dict[str, str]]:
        uuid = uuid or new_id()
        provisioned = self.provider.provision(ProvisionRequest(uuid=uuid, plan=plan, region="local"))
        return uuid, provisioned.config


@pytest.fixture(scope="session")
def kafka_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not broker.jars_present():
        subprocess.run(["bash", str(broker.fetch_script())], check=True, timeout=600)
    data_dir = tmp_path_factory.mktemp("kafka") / "data"
    data_dir.mkdir()
    let_service_accounts_in(data_dir)
    keys = crypto.load_or_create_keys((), data_dir)
    crypto.configure(keys)
    url = f"sqlite:///{data_dir / 'berth.sqlite3'}"
    database = Database(url)
    database.migrate(data_dir)
    settings = Settings(data_dir=data_dir, database_url=url)
    started = time.monotonic()
    broker.ensure_embedded(settings)
    start_seconds = time.monotonic() - started
    try:
        yield Env(settings, database, KafkaProvider(database, settings), keys, start_seconds)
    finally:
        broker.stop(settings)
        database.dispose()


@pytest.fixture
def env(kafka_env: Env) -> Env:
    crypto.configure(kafka_env.keys)  # another module may have configured other keys
    return kafka_env




def is_authorization_error(error: Any) -> bool:
    return isinstance(error, KafkaError) and error.code() in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED)


def acls_of(env: Env, principal: str) -> list[Any]:
    admin = AdminClient(broker.admin_client_config(env.settings))
    found = admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
                                                 AclOperation.ANY, AclPermissionType.ANY))
    return list(found.result(timeout=30))


def topic_names(env: Env) -> set[str]:
    admin = AdminClient(broker.admin_client_config(env.settings))
    return set(admin.list_topics(timeout=30).topics)


def wait_until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


# -- without a broker ----------------------------------------------------------------------------

def test_manifest_is_a_valid_partner_manifest() -> None:
    provider = KafkaProvider(None, None)  # type: ignore[arg-type]
    manifest = provider.manifest()
    endpoints = {"base_url": "http://127.0.0.1:5000/providers/kafka/heroku/resources"}
    loaded = load_manifest({**manifest, "api": {**manifest["api"], "password": "dummy-password-123",
                                                "production": endpoints, "test": endpoints}})
    assert loaded["id"] == "kafka" and loaded["name"] == "Heroku-style Kafka"
    assert loaded["api"]["config_vars_prefix"] == "KAFKA"
    assert loaded["api"]["config_vars"] == ["KAFKA_URL", "KAFKA_TRUSTED_CERT", "KAFKA_CLIENT_CERT",
                                            "KAFKA_CLIENT_CERT_KEY", "KAFKA_PREFIX"]
    assert loaded["api"]["requires"] == ["many_per_app", "attachable", "grants"] and loaded["categories"] == ["Data Stores"]
    assert [plan["name"] for plan in loaded["plans"]] == ["basic-0", "basic-1", "basic-2"]
    assert [plan["name"] for plan in loaded["plans"] if plan["default"]] == ["basic-0"]


def test_plans_follow_herokus_basic_plans() -> None:
    assert DEFAULT_PLAN.name == "basic-0"
    assert (PLANS["basic-0"].producer_byte_rate, PLANS["basic-0"].consumer_byte_rate) == (65536, 262144)
    assert [PLANS[name].max_partitions for name in ("basic-0", "basic-1", "basic-2")] == [240, 480, 960]
    assert [PLANS[name].capacity_gb for name in ("basic-0", "basic-1", "basic-2")] == [4, 32, 64]
    for plan in PLANS.values():
        assert plan.retention_bytes_per_partition * plan.max_partitions <= plan.capacity_bytes
        assert plan.limits()["min_retention_ms"] == DAY_MS
        assert plan.price_cents > 0


def test_ca_issues_client_and_broker_certificates(tmp_path: Path) -> None:
    authority = ca.load_or_create(tmp_path / "ca")
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    assert ca.load_or_create(tmp_path / "ca").cert_pem == authority.cert_pem  # made once
    client = ca.issue_client(authority, "kafka-0123abcd")
    assert client.key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka needs
    assert ca.common_name(client.cert_pem) == "kafka-0123abcd"
    certificate = x509.load_pem_x509_certificate(client.cert_pem.encode())
    assert certificate.subject.rfc4514_string() == "CN=kafka-0123abcd"
    certificate.verify_directly_issued_by(authority.certificate)
    server = x509.load_pem_x509_certificate(ca.issue_server(authority, ["127.0.0.1", "localhost"]).cert_pem.encode())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    with pytest.raises(ValueError):
        ca.issue_client(authority, "CN=evil,O=x")


def test_server_properties_lock_the_broker_down(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://")
    state = {"host": "127.0.0.1", "tenant_port": 29100, "admin_port": 29101, "controller_port": 29102}
    lines = dict(line.split("=", 1) for line in broker.render_properties(settings, state).splitlines()
                 if line and not line.startswith("#"))
    assert lines["process.roles"] == "broker,controller"
    assert lines["listener.security.protocol.map"] == "INTERNAL:SSL,CONTROLLER:SSL,TENANT:SSL"
    for listener in ("internal", "controller", "tenant"):
        assert lines[f"listener.name.{listener}.ssl.client.auth"] == "required"
    admin_ca = str(tmp_path / "backends" / "kafka" / "tls" / "admin-ca.pem")
    assert lines["listener.name.internal.ssl.truststore.location"] == admin_ca
    assert lines["listener.name.controller.ssl.truststore.location"] == admin_ca
    assert lines["listener.name.tenant.ssl.truststore.location"] != admin_ca
    assert "INTERNAL://127.0.0.1:29101" in lines["listeners"] and "CONTROLLER://127.0.0.1:29102" in lines["listeners"]
    assert lines["listener.name.tenant.ssl.client.auth"] == "required"
    assert lines["listener.name.tenant.ssl.keystore.type"] == lines["listener.name.tenant.ssl.truststore.type"] == "PEM"
    assert lines["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert lines["allow.everyone.if.no.acl.found"] == "false"
    assert lines["auto.create.topics.enable"] == "false"
    assert lines["super.users"] == "User:berth-kafka-admin"  # Berth's admin principal, nobody else
    assert broker.new_cluster_id()[0] != "-" and len(broker.new_cluster_id()) == 22


# -- against the broker --------------------------------------------------------------------------

@pytest.mark.slow
def test_provision_then_produce_and_consume_over_mtls(env: Env) -> None:
    uuid, config = env.provision()
    assert set(config) == {"KAFKA_URL", "KAFKA_TRUSTED_CERT", "KAFKA_CLIENT_CERT", "KAFKA_CLIENT_CERT_KEY",
                           "KAFKA_PREFIX"}
    assert config["KAFKA_URL"].startswith("kafka+ssl://127.0.0.1:")
    prefix = config["KAFKA_PREFIX"]
    assert prefix.endswith(".") and len(prefix) > 2
    assert ca.common_name(config["KAFKA_CLIENT_CERT"]) == env.provider.details(uuid)["principal"]
    # Quotas reach the broker's metadata a moment after the controller took them.
    wait_until(lambda: env.provider.quotas(uuid) == {"producer_byte_rate": 65536.0, "consumer_byte_rate": 262144.0})

    created = env.provider.create_topic(uuid, "events", partitions=2)
    assert created == {"name": prefix + "events", "partitions": 2, "retention_ms": DAY_MS}
    assert env.provider.list_topics(uuid) == [created]
    assert produce(config, prefix + "events", b"hello") is None
    assert consume(config, prefix + "events", prefix + "readers") == b"hello"


def topic_error(config: dict[str, str], topic: str) -> Any:
    """What the broker tells the tenant's certificate about `topic` in a metadata request (one
    round trip; None when the topic exists and may be described)."""
    admin = AdminClient(client_config(config))
    return admin.list_topics(topic=topic, timeout=30).topics[topic].error


def group_ids(env: Env) -> set[str]:
    admin = AdminClient(broker.admin_client_config(env.settings))
    return {group.group_id for group in admin.list_consumer_groups().result(timeout=30).valid}


@pytest.mark.slow
def test_the_certificate_works_the_moment_provision_returns(env: Env) -> None:
    # Provision sets ACLs and quotas concurrently and returns once the broker shows the ACLs:
    # no waiting on the tenant's side, for the ACLs or for a topic made afterwards.
    uuid, config = env.provision()
    prefix = config["KAFKA_PREFIX"]
    missing = topic_error(config, prefix + "not-yet")
    assert missing is not None and missing.code() == KafkaError.UNKNOWN_TOPIC_OR_PART  # described, not refused
    other = topic_error(config, "other-tenant.topic")
    assert other is not None and other.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    topic = env.provider.create_topic(uuid, "now", partitions=8)["name"]
    assert topic_error(config, topic) is None
    assert produce(config, topic, b"at once") is None
    assert consume(config, topic, prefix + "readers") == b"at once"


@pytest.mark.slow
def test_provision_is_idempotent_and_finishes_a_half_done_one(env: Env) -> None:
    uuid, config = env.provision()
    assert env.provision(uuid=uuid)[1] == config
    assert env.provider.details(uuid)["state"] == "active"

    # A crash after the record was committed, before anything was made on the broker.
    half = new_id()
    cluster = env.provider._cluster()
    env.provider._reserve(half, PLANS["basic-0"], cluster)
    recorded = env.provider.details(half)
    assert recorded["state"] == "creating" and acls_of(env, f"User:{recorded['principal']}") == []
    _, finished = env.provision(uuid=half)
    assert finished["KAFKA_PREFIX"] == recorded["prefix"] and finished["KAFKA_CLIENT_CERT"] == recorded["client_cert"]
    assert env.provider.details(half)["state"] == "active"
    assert len(acls_of(env, f"User:{recorded['principal']}")) == 9

    with pytest.raises(ProviderError) as refused:
        env.provision(plan="basic-9")
    assert refused.value.status == 422


@pytest.mark.slow
def test_tenants_cannot_reach_each_others_topics_or_groups(env: Env) -> None:
    a_uuid, a = env.provision()
    b_uuid, b = env.provision()
    b_topic = env.provider.create_topic(b_uuid, "private", partitions=1)["name"]
    assert produce(b, b_topic, b"secret") is None

    assert is_authorization_error(produce(a, b_topic, b"intrusion"))
    assert is_authorization_error(consume(a, b_topic, a["KAFKA_PREFIX"] + "snoop"))
    a_topic = env.provider.create_topic(a_uuid, "own", partitions=1)["name"]
    assert produce(a, a_topic, b"mine") is None
    joined = consume(a, a_topic, b["KAFKA_PREFIX"] + "group")  # A's own topic, in B's group
    assert isinstance(joined, KafkaError) and joined.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    assert is_authorization_error(consume(a, a_topic, "no-prefix-group"))
    assert consume(b, b_topic, b["KAFKA_PREFIX"] + "g") == b"secret"  # B still reads its own


@pytest.mark.slow
def test_tenants_cannot_create_topics_themselves(env: Env) -> None:
    _, config = env.provision()
    admin = AdminClient(client_config(config))
    futures = admin.create_topics([NewTopic(config["KAFKA_PREFIX"] + "sneaky", num_partitions=1)])
    with pytest.raises(KafkaException) as refused:
        futures[config["KAFKA_PREFIX"] + "sneaky"].result(timeout=30)
    assert refused.value.args[0].code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                            KafkaError.CLUSTER_AUTHORIZATION_FAILED)
    error = produce(config, config["KAFKA_PREFIX"] + "auto", b"x", timeout_ms=3000)  # no auto-creation
    assert error is not None and error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._MSG_TIMED_OUT,
                                                  KafkaError._UNKNOWN_TOPIC)
    assert config["KAFKA_PREFIX"] + "sneaky" not in topic_names(env)
    assert config["KAFKA_PREFIX"] + "auto" not in topic_names(env)


@pytest.mark.slow
def test_topic_limits_are_refused_with_422_and_nothing_created(env: Env) -> None:
    small = KafkaProvider(env.database, env.settings, plans={
        "tiny": Plan("tiny", "Tiny", 100, 64, 256, 1, 4, 2 * DAY_MS, default=True)})
    uuid = new_id()
    config = small.provision(ProvisionRequest(uuid=uuid, plan="tiny", region="local")).config
    prefix = config["KAFKA_PREFIX"]
    before = topic_names(env)
    for kwargs, words in (({"partitions": 5}, "allows 4"), ({"partitions": 0}, "at least 1"),
                          ({"retention_ms": DAY_MS - 1}, "retention_ms must be between"),
                          ({"retention_ms": 3 * DAY_MS}, "retention_ms must be between"),
                          ({"partitions": "2"}, "whole number")):
        with pytest.raises(ProviderError) as refused:
            small.create_topic(uuid, "big", **kwargs)  # type: ignore[arg-type]
        assert refused.value.status == 422 and words in refused.value.message
    for bad in ("", "with space", "x" * 250):
        with pytest.raises(ProviderError) as refused:
            small.create_topic(uuid, bad)
        assert refused.value.status == 422
    assert topic_names(env) == before

    assert small.create_topic(uuid, prefix + "one", partitions=3)["name"] == prefix + "one"  # prefix given
    assert small.create_topic(uuid, "one", partitions=3)["partitions"] == 3  # the same again: no-op
    with pytest.raises(ProviderError) as refused:
        small.create_topic(uuid, "two", partitions=2)  # 3 + 2 > 4
    assert refused.value.status == 422 and "1 left" in refused.value.message
    assert prefix + "two" not in topic_names(env)
    with pytest.raises(ProviderError) as refused:
        small.create_topic(uuid, "one", partitions=1)
    assert refused.value.status == 422 and "already exists" in refused.value.message


@pytest.mark.slow
def test_configure_and_delete_topics(env: Env) -> None:
    uuid, config = env.provision()
    name = env.provider.create_topic(uuid, "logs", partitions=1)["name"]
    assert env.provider.configure_topic(uuid, "logs", 3 * DAY_MS)["retention_ms"] == 3 * DAY_MS
    assert env.provider.list_topics(uuid)[0]["retention_ms"] == 3 * DAY_MS
    with pytest.raises(ProviderError) as refused:
        env.provider.configure_topic(uuid, "logs", 8 * DAY_MS)
    assert refused.value.status == 422
    with pytest.raises(ProviderError) as missing:
        env.provider.configure_topic(uuid, "nope", DAY_MS)
    assert missing.value.status == 404
    assert env.provider.action(uuid, "info", {}).result["partitions_used"] == 1
    assert env.provider.delete_topic(uuid, name) is True
    wait_until(lambda: name not in topic_names(env))
    assert env.provider.delete_topic(uuid, "logs") is False
    assert env.provider.list_topics(uuid) == []
    with pytest.raises(ProviderError) as unknown:
        env.provider.create_topic(new_id(), "x")
    assert unknown.value.status == 404


@pytest.mark.slow
def test_change_plan_moves_quotas_and_limits(env: Env) -> None:
    uuid, config = env.provision()
    env.provider.create_topic(uuid, "t", partitions=1)
    assert env.provider.change_plan(uuid, "basic-1") is None
    wait_until(lambda: env.provider.quotas(uuid) == {"producer_byte_rate": 512 * 1024.0,
                                                     "consumer_byte_rate": 2048 * 1024.0})
    assert env.provider.details(uuid)["plan"] == "basic-1"
    env.provider.configure_topic(uuid, "t", 10 * DAY_MS)  # within basic-1's 14 days
    admin = AdminClient(broker.admin_client_config(env.settings))
    resource = ConfigResource(ResourceType.TOPIC, config["KAFKA_PREFIX"] + "t")
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    assert int(entries["retention.bytes"].value) == PLANS["basic-1"].retention_bytes_per_partition
    with pytest.raises(ProviderError) as refused:
        env.provider.change_plan(uuid, "basic-0")  # 10 days > basic-0's 7
    assert refused.value.status == 422 and "retention" in refused.value.message
    with pytest.raises(ProviderError) as missing:
        env.provider.change_plan(new_id(), "basic-1")
    assert missing.value.status == 404


@pytest.mark.slow
def test_deprovision_removes_everything_and_the_certificate_stops_working(env: Env) -> None:
    uuid, config = env.provision()
    prefix = config["KAFKA_PREFIX"]
    topic = env.provider.create_topic(uuid, "data", partitions=1)["name"]
    assert produce(config, topic, b"x") is None
    assert consume(config, topic, prefix + "g") == b"x"
    principal = f"User:{env.provider.details(uuid)['principal']}"
    assert len(acls_of(env, principal)) == 9

    assert prefix + "g" in group_ids(env)

    assert env.provider.deprovision(uuid) is True
    # All of it at once, no waiting: the deletions ran concurrently and deprovision returned
    # only when the broker showed them.
    assert acls_of(env, principal) == []
    assert is_authorization_error(topic_error(config, topic))
    assert not any(name.startswith(prefix) for name in topic_names(env))
    assert not any(group.startswith(prefix) for group in group_ids(env))
    wait_until(lambda: env.provider.quotas(uuid) == {})  # the broker's copy of quotas may lag a moment
    assert is_authorization_error(produce(config, topic, b"y"))
    assert is_authorization_error(consume(config, topic, prefix + "g2"))
    assert env.provider.details(uuid)["state"] == "deleted"
    assert "client_key" not in env.provider.details(uuid)

    assert env.provider.deprovision(uuid) is False
    assert env.provider.deprovision(new_id()) is False
    with pytest.raises(ProviderError) as reused:
        env.provision(uuid=uuid)
    assert reused.value.status == 422


@pytest.mark.slow
def test_supervise_restarts_a_dead_broker_and_data_survives(env: Env) -> None:
    assert env.start_seconds < 60
    uuid, config = env.provision()
    topic = env.provider.create_topic(uuid, "durable", partitions=1)["name"]
    assert produce(config, topic, b"kept") is None
    state = broker._read_state(env.settings)
    assert state is not None and broker.running(env.settings)
    os.kill(state["pid"], signal.SIGKILL)
    wait_until(lambda: not broker.running(env.settings))
    started = time.monotonic()
    assert broker.supervise(env.settings) == broker.endpoints(env.settings)
    assert time.monotonic() - started < 60
    assert broker.running(env.settings)
    assert broker._read_state(env.settings)["tenant_port"] == state["tenant_port"]  # type: ignore[index]
    assert consume(config, topic, config["KAFKA_PREFIX"] + "after") == b"kept"
    # An external cluster is not the embedded broker's business.
    assert broker.supervise(env.settings.with_overrides(kafka_bootstrap="10.0.0.1:9096")) is None


# -- the admin listeners and the broker's account ------------------------------------------------

def anonymous_attempts(env: Env, addresses: Sequence[str]) -> dict[str, Any]:
    """What a client without Berth's admin certificate gets from each of `addresses`: listing
    topics, describing the cluster and reading ACLs, in plaintext and over TLS without a client
    certificate; each value is the result (a failure is an exception instance). The attempts run
    at once: each may wait out its timeout."""
    ca_pem = str(broker.admin_credentials(env.settings)[0])
    attempts: dict[str, Callable[[], Any]] = {}
    for address in addresses:
        clients = {"plaintext": {"bootstrap.servers": address},
                   "tls-no-cert": {"bootstrap.servers": address, "security.protocol": "ssl", "ssl.ca.location": ca_pem}}
        for kind, config in clients.items():
            admin = AdminClient({**config, "log_level": 0, "socket.connection.setup.timeout.ms": 3000})
            attempts[f"{address} {kind} topics"] = lambda admin=admin: admin.list_topics(timeout=5).topics
            attempts[f"{address} {kind} cluster"] = \
                lambda admin=admin: admin.describe_cluster(request_timeout=5).result(timeout=8)
            attempts[f"{address} {kind} acls"] = lambda admin=admin: admin.describe_acls(AclBindingFilter(
                ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                AclPermissionType.ANY), request_timeout=5).result(timeout=8)

    def attempt(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:  # what an anonymous client must meet
            return exc

    with ThreadPoolExecutor(len(attempts)) as pool:
        return dict(zip(attempts, pool.map(attempt, attempts.values())))


@pytest.mark.slow
def test_admin_listeners_refuse_anyone_without_berths_admin_certificate(env: Env) -> None:
    from berth.addons.kafka.provider import QuotaError, describe_user_quotas

    uuid, config = env.provision()
    principal = env.provider.details(uuid)["principal"]
    found = broker.endpoints(env.settings)
    assert found is not None
    answers = anonymous_attempts(env, (found.admin_bootstrap, found.controller))
    assert len(answers) == 12 and all(isinstance(answer, Exception) for answer in answers.values()), {
        key: answer for key, answer in answers.items() if not isinstance(answer, Exception)}
    for address in (found.admin_bootstrap, found.controller):
        # The raw client-quota request Berth itself sends, without the certificate.
        with pytest.raises((OSError, QuotaError, Exception)):
            describe_user_quotas(address, principal, timeout=5)
    # A tenant's certificate opens nothing there either: another CA.
    tenant = AdminClient(client_config(config, **{"bootstrap.servers": found.admin_bootstrap,
                                                  "socket.connection.setup.timeout.ms": 3000}))
    with pytest.raises(KafkaException):
        tenant.list_topics(timeout=5)
    # Berth's own admin identity still administers, through both listeners.
    assert len(acls_of(env, f"User:{principal}")) == 9
    quotas = describe_user_quotas(found.admin_bootstrap, principal, tls=broker.admin_ssl_context(env.settings))
    assert quotas == {"producer_byte_rate": 65536.0, "consumer_byte_rate": 262144.0}


@pytest.mark.slow
def test_kafka_runs_as_its_own_unprivileged_account(env: Env) -> None:
    state = broker._read_state(env.settings)
    assert state is not None and broker.running(env.settings)
    status = Path(f"/proc/{state['pid']}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    base = broker.root(env.settings)
    if os.geteuid() == 0:
        import pwd

        assert uid == pwd.getpwnam(broker.ACCOUNT).pw_uid != 0
        groups = next(line for line in status.splitlines() if line.startswith("Groups:")).split()[1:]
        assert "0" not in groups
    else:
        assert uid == os.geteuid()
    data = (base / "data").stat()
    assert data.st_uid == uid and stat.S_IMODE(data.st_mode) == 0o700
    for key in ("broker.pem", "internal.pem"):
        found = (base / "tls" / key).stat()
        assert found.st_uid == uid and stat.S_IMODE(found.st_mode) == 0o600
    # The CAs' keys stay Berth's: the broker never needs to sign anything.
    for ca_key in (base / "ca" / "ca.key", broker.admin_dir(env.settings) / "ca.key",
                   broker.admin_dir(env.settings) / "client.key"):
        found = ca_key.stat()
        assert stat.S_IMODE(found.st_mode) == 0o600 and (found.st_uid != uid or os.geteuid() != 0)


@pytest.mark.slow
def test_the_reconciler_removes_what_no_live_record_owns(env: Env) -> None:
    from berth.addons import resources
    from berth.addons.kafka.provider import alter_user_quotas, tenant_acls
    from berth.addons.kafka.reconcile import reconcile

    kept_uuid, kept = env.provision()
    kept_topic = env.provider.create_topic(kept_uuid, "stays", partitions=1)["name"]
    kept_principal = f"User:{env.provider.details(kept_uuid)['principal']}"
    # The issue's leftover: a principal with its 9 ACLs, a quota and a topic whose add-on is gone.
    orphan_uuid, _ = env.provision()
    orphan_topic = env.provider.create_topic(orphan_uuid, "left", partitions=1)["name"]
    orphan = env.provider.details(orphan_uuid)["principal"]
    with env.database.transaction() as session:
        resources.find(session, "kafka", orphan_uuid).state = resources.DELETED  # type: ignore[union-attr]
    # And one no record ever knew.
    stray = "kafka-" + "0badc0de" * 2
    admin = AdminClient(broker.admin_client_config(env.settings))
    for future in admin.create_acls(tenant_acls("zephyr-0badc0de.", f"User:{stray}")).values():
        future.result(timeout=30)
    endpoints = broker.endpoints(env.settings)
    assert endpoints is not None
    tls = broker.admin_ssl_context(env.settings)
    alter_user_quotas(endpoints.controller, stray, {"producer_byte_rate": 1024.0}, tls=tls)
    wait_until(lambda: stray in reconcile_view(env))

    gone = reconcile(env.provider)
    assert {f"User:{orphan}", f"User:{stray}"} <= set(gone.principals)
    assert {orphan, stray} <= set(gone.quotas) and orphan_topic in gone.topics
    assert kept_principal not in gone.principals and kept_topic not in gone.topics
    assert acls_of(env, f"User:{orphan}") == [] and acls_of(env, f"User:{stray}") == []
    wait_until(lambda: not {orphan, stray} & set(reconcile_view(env)))
    wait_until(lambda: orphan_topic not in topic_names(env))
    # The live add-on keeps everything, and works.
    assert len(acls_of(env, kept_principal)) == 9 and kept_topic in topic_names(env)
    assert produce(kept, kept_topic, b"still here") is None
    assert not reconcile(env.provider)  # nothing left to find


def reconcile_view(env: Env) -> dict[str, dict[str, float]]:
    from berth.addons.kafka.provider import describe_all_user_quotas

    endpoints = broker.endpoints(env.settings)
    assert endpoints is not None
    return describe_all_user_quotas(endpoints.admin_bootstrap, tls=broker.admin_ssl_context(env.settings))


def accepted_but_not_begun(env: Env, callback_url: str, grant: dict[str, str]) -> str:
    """What an accepted (202) provision leaves when its process dies at once: the record with
    Berth's callback and grant, nothing on the broker."""
    uuid = new_id()
    env.provider._reserve(uuid, PLANS["basic-0"], env.provider._planned_cluster())
    env.provider._remember_callback(uuid, callback_url.replace("{uuid}", uuid), grant)
    return uuid


@pytest.mark.slow
def test_an_accepted_provision_whose_process_died_is_finished_by_the_backends_loop(env: Env) -> None:
    from berth.broker.partner_api.conformance import _PlatformStub

    manifest = KafkaProvider(env.database, env.settings).manifest()
    with _PlatformStub(manifest["api"]["config_vars"]) as platform:
        uuid = accepted_but_not_begun(env, platform.url + "/addons/{uuid}", {})
        grant = platform.mint_grant(uuid)
        env.provider._update_details(uuid, {"pending": {**env.provider.details(uuid)["pending"], "grant": grant}})
        assert env.provider.resume_pending() == 0  # what the backends loop calls every few seconds
        assert platform.wait_provisioned(uuid, 30)
        seen = platform.seen(uuid)
        assert seen["exchanged"] and set(seen["config_names"]) == set(manifest["api"]["config_vars"])
    details = env.provider.details(uuid)
    assert details["state"] == "active" and "pending" not in details
    assert len(acls_of(env, f"User:{details['principal']}")) == 9
    assert env.provider.resume_pending() == 0 and env.provider.finish_pending(uuid) is True  # once only


@pytest.mark.slow
def test_deprovisioning_an_accepted_add_on_before_it_began_removes_only_its_record(env: Env) -> None:
    uuid = accepted_but_not_begun(env, "http://127.0.0.1:9/addons/{uuid}", {"code": "unused"})
    principal = f"User:{env.provider.details(uuid)['principal']}"
    assert env.provider.deprovision(uuid) is True
    assert env.provider.details(uuid)["state"] == "deleted"
    assert env.provider.finish_pending(uuid) is True  # a late finisher finds it gone: makes nothing
    assert acls_of(env, principal) == [] and env.provider.quotas(uuid) == {}
    assert env.provider.deprovision(uuid) is False


@pytest.mark.slow
def test_the_backends_loop_runs_the_reconciler(env: Env) -> None:
    from berth.addons import backends
    from berth.addons.kafka.provider import tenant_acls

    stray = "User:kafka-" + "feedface" * 2
    admin = AdminClient(broker.admin_client_config(env.settings))
    for future in admin.create_acls(tenant_acls("willow-feedface.", stray)).values():
        future.result(timeout=30)
    assert len(acls_of(env, stray)) == 9
    backends.reconcile_kafka(env.settings, env.database)
    assert acls_of(env, stray) == []


# -- grants: a principal per OSB binding ------------------------------------------------------------

@pytest.mark.slow
def test_a_grant_has_a_principal_of_its_own_revoked_alone_and_with_the_add_on(env: Env) -> None:
    uuid, config = env.provision()
    prefix = config["KAFKA_PREFIX"]
    first, second = env.provider.grant(uuid, "one"), env.provider.grant(uuid, "two")
    assert env.provider.grant(uuid, "one") == first  # idempotent on the grant id
    assert set(first) == set(config) and first["KAFKA_PREFIX"] == prefix
    principals = {ca.common_name(each["KAFKA_CLIENT_CERT"]) for each in (config, first, second)}
    assert len(principals) == 3
    one = ca.common_name(first["KAFKA_CLIENT_CERT"])
    assert len(acls_of(env, f"User:{one}")) == 9
    wait_until(lambda: describe_user_quotas(env.provider.details(uuid)["admin_bootstrap"], one, 10.0,
                                            broker.admin_ssl_context(env.settings))
               == {"producer_byte_rate": 65536.0, "consumer_byte_rate": 262144.0})
    from berth.addons.kafka.reconcile import reconcile
    assert f"User:{one}" not in reconcile(env.provider).principals  # a recorded grant is no leftover
    topic = env.provider.create_topic(uuid, "shared", partitions=1)["name"]
    assert produce(first, topic, b"from a binding") is None
    assert consume(second, topic, prefix + "readers") == b"from a binding"

    assert env.provider.revoke(uuid, "one") is True
    assert acls_of(env, f"User:{one}") == []
    assert is_authorization_error(produce(first, topic, b"after unbind"))
    assert produce(config, topic, b"own") is None and produce(second, topic, b"other") is None
    assert env.provider.revoke(uuid, "one") is False

    two = ca.common_name(second["KAFKA_CLIENT_CERT"])
    assert env.provider.deprovision(uuid) is True
    assert acls_of(env, f"User:{two}") == []
    assert is_authorization_error(produce(second, topic, b"after deprovision"))
    with pytest.raises(ProviderError) as gone:
        env.provider.grant(uuid, "three")
    assert gone.value.status == 404
