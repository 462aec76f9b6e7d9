"""Berth against an operator's Kafka cluster (`BERTH_KAFKA_BOOTSTRAP`): its admin client must
authenticate with the client certificate the operator issued it, and Berth refuses to start with
admin settings it cannot use, or none at all unless plaintext is explicitly allowed.

The operator's cluster is a real broker of its own (broker.py's machinery on another data dir):
mTLS on every listener, its own tenant CA, its own admin CA, and a super user whose certificate
the "operator" hands to Berth as files."""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from berth import create_app, crypto
from berth.addons.kafka import broker
from berth.addons.kafka.ca import issue_client, load_or_create, write_private
from berth.addons.kafka.external import ConfigError, admin_access
from berth.addons.kafka.provider import KafkaProvider, describe_user_quotas
from berth.broker.partner_api.provider import ProvisionRequest
from berth.config import Settings
from berth.db import Database, new_id
from tests.builtin_platform import let_service_accounts_in
from tests.kafka_clients import consume, produce

ADMIN_BOOTSTRAP = "127.0.0.1:1"  # never dialled by the start-up checks


@pytest.fixture(scope="module")
def operator_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, broker.Endpoints]]:
    """A broker run the way an operator runs one: Berth (the test's) never started it."""
    if not broker.jars_present():
        subprocess.run(["bash", str(broker.fetch_script())], check=True, timeout=600)
    data_dir = tmp_path_factory.mktemp("operator") / "data"
    data_dir.mkdir()
    let_service_accounts_in(data_dir)
    settings = Settings(data_dir=data_dir, database_url="sqlite://")
    endpoints = broker.ensure_embedded(settings)
    try:
        yield settings, endpoints
    finally:
        broker.stop(settings)


@pytest.fixture
def handed_over(operator_cluster: tuple[Settings, broker.Endpoints], tmp_path: Path) -> dict[str, Path]:
    """What the operator gives Berth: its super user's certificate and key, the CA of its brokers'
    admin listener, and the tenant CA (ca.pem + ca.key) for `BERTH_KAFKA_CA_DIR`, copied to files
    of Berth's own."""
    operator, _ = operator_cluster
    admin = broker.admin_dir(operator)
    given = tmp_path / "given"
    given.mkdir()
    files = {"cert": given / "admin.pem", "key": given / "admin.key", "ca": given / "admin-ca.pem",
             "tenant_ca": given / "tenant-ca"}
    shutil.copyfile(admin / "client.pem", files["cert"])
    write_private(files["key"], (admin / "client.key").read_text())
    shutil.copyfile(admin / "ca.pem", files["ca"])
    shutil.copytree(operator.data_dir / "backends" / "kafka" / "ca", files["tenant_ca"])
    return files


def berth_settings(tmp_path: Path, **changes: object) -> Settings:
    data_dir = tmp_path / "berth"
    data_dir.mkdir(exist_ok=True)
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'berth.sqlite3'}",
                        kafka_bootstrap="127.0.0.1:9", kafka_admin_bootstrap=ADMIN_BOOTSTRAP)
    return settings.with_overrides(**changes)


@pytest.mark.slow
def test_berth_administers_an_external_cluster_with_the_certificate_it_was_given(
        operator_cluster: tuple[Settings, broker.Endpoints], handed_over: dict[str, Path], tmp_path: Path) -> None:
    _, endpoints = operator_cluster
    settings = berth_settings(tmp_path, kafka_bootstrap=endpoints.bootstrap,
                              kafka_admin_bootstrap=endpoints.admin_bootstrap, kafka_ca_dir=str(handed_over["tenant_ca"]), kafka_admin_cert=str(handed_over["cert"]),
                              kafka_admin_key=str(handed_over["key"]), kafka_admin_ca=str(handed_over["ca"]))
    crypto.configure(crypto.load_or_create_keys((), settings.data_dir))
    database = Database(settings.database_url)
    database.migrate(settings.data_dir)
    provider = KafkaProvider(database, settings, timeout=20)
    try:
        uuid = new_id()
        config = provider.provision(ProvisionRequest(uuid=uuid, plan="basic-0", region="local")).config
        assert provider.details(uuid)["location"] == endpoints.bootstrap  # not the embedded broker
        assert not broker.endpoints(settings)  # Berth started no broker of its own
        topic = provider.create_topic(uuid, "events")["name"]
        assert produce(config, topic, b"hello") is None
        assert consume(config, topic, config["KAFKA_PREFIX"] + "readers") == b"hello"
        principal = provider.details(uuid)["principal"]
        quotas = describe_user_quotas(endpoints.admin_bootstrap, principal,
                                      tls=admin_access(settings).ssl_context())  # type: ignore[union-attr]
        assert quotas == {"producer_byte_rate": 65536.0, "consumer_byte_rate": 262144.0}
        assert provider.deprovision(uuid)
        assert topic not in AdminClient(admin_access(settings).client_config(  # type: ignore[union-attr]
            endpoints.admin_bootstrap)).list_topics(timeout=20).topics
    finally:
        database.dispose()


@pytest.mark.slow
def test_a_certificate_the_cluster_does_not_trust_gets_no_admin_access(
        operator_cluster: tuple[Settings, broker.Endpoints], handed_over: dict[str, Path], tmp_path: Path) -> None:
    """A well-formed admin certificate from the wrong CA (here: the tenant CA, which the admin
    listener does not trust) passes the start-up checks but every admin call fails, loudly."""
    _, endpoints = operator_cluster
    impostor = issue_client(load_or_create(handed_over["tenant_ca"]), broker.ADMIN_PRINCIPAL)
    write_private(tmp_path / "impostor.key", impostor.key_pem)
    (tmp_path / "impostor.pem").write_text(impostor.chain_pem)
    settings = berth_settings(tmp_path, kafka_admin_bootstrap=endpoints.admin_bootstrap,
                              kafka_admin_cert=str(tmp_path / "impostor.pem"),
                              kafka_admin_key=str(tmp_path / "impostor.key"), kafka_admin_ca=str(handed_over["ca"]))
    client = AdminClient({**admin_access(settings).client_config(endpoints.admin_bootstrap),  # type: ignore[union-attr]
                          "log_level": 0, "socket.connection.setup.timeout.ms": 3000})
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)


# -- the start-up checks (no broker needed) ------------------------------------------------------

def test_berth_refuses_to_start_against_an_external_admin_listener_without_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BERTH_KAFKA_ADMIN_CERT and BERTH_KAFKA_ADMIN_KEY") as refused:
        create_app(berth_settings(tmp_path))
    assert "BERTH_KAFKA_ADMIN_INSECURE=1" in str(refused.value)


def test_plaintext_is_allowed_only_when_asked_for_and_then_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="berth.addons.kafka.external"):
        access = admin_access(berth_settings(tmp_path, kafka_admin_insecure=True))
    assert access is not None and not access.authenticated
    assert access.client_config(ADMIN_BOOTSTRAP) == {"bootstrap.servers": ADMIN_BOOTSTRAP}
    assert "BERTH_KAFKA_ADMIN_INSECURE=1" in caplog.text and "plaintext" in caplog.text
    assert admin_access(Settings(data_dir=tmp_path, database_url="sqlite://")) is None  # the embedded broker


def test_unusable_admin_credentials_are_named_at_start(tmp_path: Path) -> None:
    authority = load_or_create(tmp_path / "ca")
    good, other = issue_client(authority, "berth-admin"), issue_client(authority, "someone-else")
    write_private(tmp_path / "admin.key", good.key_pem)
    write_private(tmp_path / "other.key", other.key_pem)
    (tmp_path / "admin.pem").write_text(good.chain_pem)
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    cert, key = str(tmp_path / "admin.pem"), str(tmp_path / "admin.key")
    cases = [
        ({"kafka_admin_cert": cert}, "BERTH_KAFKA_ADMIN_CERT is set but BERTH_KAFKA_ADMIN_KEY is not"),
        ({"kafka_admin_key": key}, "BERTH_KAFKA_ADMIN_KEY is set but BERTH_KAFKA_ADMIN_CERT is not"),
        ({"kafka_admin_cert": str(tmp_path / "missing.pem"), "kafka_admin_key": key},
         "BERTH_KAFKA_ADMIN_CERT: cannot read .*missing.pem"),
        ({"kafka_admin_cert": str(tmp_path / "garbage.pem"), "kafka_admin_key": key},
         "BERTH_KAFKA_ADMIN_CERT: .*garbage.pem holds no PEM certificate"),
        ({"kafka_admin_cert": cert, "kafka_admin_key": str(tmp_path / "admin.pem")},
         "BERTH_KAFKA_ADMIN_KEY: .*admin.pem holds no unencrypted PEM private key"),
        ({"kafka_admin_cert": cert, "kafka_admin_key": str(tmp_path / "other.key")},
         "BERTH_KAFKA_ADMIN_KEY .* is not the key of the certificate in BERTH_KAFKA_ADMIN_CERT"),
        ({"kafka_admin_cert": cert, "kafka_admin_key": key, "kafka_admin_ca": str(tmp_path / "none.pem")},
         "BERTH_KAFKA_ADMIN_CA: cannot read"),
        ({"kafka_admin_ca": str(authority.cert_path)}, "has no credentials"),  # TLS alone proves nothing
        ({"kafka_admin_bootstrap": "", "kafka_admin_insecure": True},
         "BERTH_KAFKA_BOOTSTRAP is set but BERTH_KAFKA_ADMIN_BOOTSTRAP is not"),
    ]
    for changes, message in cases:
        with pytest.raises(ConfigError, match=message):
            admin_access(berth_settings(tmp_path, **changes))
    access = admin_access(berth_settings(tmp_path, kafka_admin_cert=cert, kafka_admin_key=key))
    assert access is not None and access.authenticated and access.ca is None  # the system's CAs then
    assert access.client_config(ADMIN_BOOTSTRAP)["ssl.certificate.location"] == cert


def test_the_settings_come_from_the_environment() -> None:
    from berth.config import load_settings

    settings = load_settings({"BERTH_DATA_DIR": "/tmp/berth-settings", "BERTH_KAFKA_ADMIN_CERT": "/etc/a.pem",
                              "BERTH_KAFKA_ADMIN_KEY": "/etc/a.key", "BERTH_KAFKA_ADMIN_CA": "/etc/ca.pem",
                              "BERTH_KAFKA_ADMIN_INSECURE": "1"})
    assert (settings.kafka_admin_cert, settings.kafka_admin_key, settings.kafka_admin_ca) == (
        "/etc/a.pem", "/etc/a.key", "/etc/ca.pem")
    assert settings.kafka_admin_insecure and not load_settings({}).kafka_admin_insecure
