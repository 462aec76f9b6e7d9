"""A node of several refuses to start without the secrets the nodes must share, saying which; the
installation CA comes from configuration (PEM text or a file's path) and is what every node serves."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from berth import certificates
from berth.config import Settings, load_settings
from berth.nodes import NodeConfigError, prepare_node
from tests.conftest import TEST_KEY
from tests.live_server import ROOT, clean_env, free_port


@pytest.fixture(scope="module")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ca = certificates.load_or_create(tmp_path_factory.mktemp("operator") / "ca", "Operator's CA")
    return ca.cert_path, ca.directory / "ca.key"


def node(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"BERTH_DATA_DIR": str(tmp_path / "data"), **env})


def test_serve_refuses_a_node_without_shared_secrets_and_starts_nothing(tmp_path: Path) -> None:
    env = {**clean_env(), "BERTH_DATA_DIR": str(tmp_path / "data"), "BERTH_NODE_NAME": "node-a",
           "BERTH_PORT": str(free_port())}
    ran = subprocess.run([sys.executable, "-m", "berth.serve"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert ran.returncode == 2
    for named in ("BERTH_DATABASE_URL", "BERTH_SECRET_KEYS", "BERTH_CA_CERT and BERTH_CA_KEY"):
        assert named in ran.stderr
    assert not (tmp_path / "data" / "secret.keys").exists()  # no per-node key was made meanwhile
    assert not (tmp_path / "data" / "ca").exists()


def test_each_process_refuses_alike(tmp_path: Path, postgres_database_url: str) -> None:
    env = {**clean_env(), "BERTH_DATA_DIR": str(tmp_path / "data"), "BERTH_NODE_NAME": "node-a",
           "BERTH_DATABASE_URL": postgres_database_url, "BERTH_SECRET_KEYS": TEST_KEY, "BERTH_BUILTIN_ADDONS": "0"}
    ran = subprocess.run([sys.executable, "-m", "berth.worker"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert ran.returncode != 0
    assert "BERTH_CA_CERT and BERTH_CA_KEY" in ran.stderr and "BERTH_SECRET_KEYS" not in ran.stderr


def test_a_node_of_several_refuses_embedded_add_on_backends(tmp_path: Path, postgres_database_url: str,
                                                            ca_files: tuple[Path, Path]) -> None:
    cert, key = ca_files
    settings = node(tmp_path, BERTH_NODE_NAME="node-a", BERTH_DATABASE_URL=postgres_database_url,
                    BERTH_SECRET_KEYS=TEST_KEY, BERTH_CA_CERT=str(cert), BERTH_CA_KEY=str(key),
                    BERTH_REDIS_SERVERS="redis://admin:pw@10.0.0.5:6379")
    with pytest.raises(NodeConfigError) as refused:
        prepare_node(settings)
    message = str(refused.value)
    assert "BERTH_POSTGRES_SERVERS, BERTH_KAFKA_BOOTSTRAP, BERTH_KAFKA_CA_DIR" in message
    assert "BERTH_BUILTIN_ADDONS=0" in message and "BERTH_REDIS_SERVERS" not in message and "pw" not in message


def test_a_node_with_everything_shared_starts_and_serves_the_configured_ca(
        tmp_path: Path, postgres_database_url: str, ca_files: tuple[Path, Path]) -> None:
    cert, key = ca_files
    shared = {"BERTH_NODE_NAME": "node-a", "BERTH_DATABASE_URL": postgres_database_url,
              "BERTH_SECRET_KEYS": TEST_KEY, "BERTH_BUILTIN_ADDONS": "0"}
    by_path = node(tmp_path / "a", **shared, BERTH_CA_CERT=str(cert), BERTH_CA_KEY=str(key))
    by_text = node(tmp_path / "b", **shared, BERTH_CA_CERT=cert.read_text(), BERTH_CA_KEY=key.read_text())
    for settings in (by_path, by_text):
        prepare_node(settings)
        assert certificates.installation_ca(settings.data_dir).cert_pem == cert.read_text()
        assert (settings.data_dir / "ca" / "ca.key").stat().st_mode & 0o077 == 0


def test_a_configured_ca_replaces_one_made_before(tmp_path: Path, ca_files: tuple[Path, Path]) -> None:
    cert, key = ca_files
    settings = node(tmp_path)
    made = certificates.installation_ca(settings.data_dir)  # a one-machine Berth made its own
    assert made.cert_pem != cert.read_text()
    prepare_node(node(tmp_path, BERTH_CA_CERT=str(cert), BERTH_CA_KEY=str(key)))
    assert certificates.installation_ca(settings.data_dir).cert_pem == cert.read_text()


@pytest.mark.parametrize("problem", ["half", "mismatched", "not-a-ca", "missing-file", "garbage"])
def test_a_bad_configured_ca_is_refused_and_nothing_is_written(
        tmp_path: Path, ca_files: tuple[Path, Path], problem: str) -> None:
    cert, key = ca_files
    other = certificates.load_or_create(tmp_path / "other", "Another CA")
    leaf = certificates.issue_server(other, "leaf", ["example.test"])
    given = {"half": {"BERTH_CA_CERT": str(cert)},
             "mismatched": {"BERTH_CA_CERT": str(cert), "BERTH_CA_KEY": str(other.directory / "ca.key")},
             "not-a-ca": {"BERTH_CA_CERT": leaf.cert_pem, "BERTH_CA_KEY": leaf.key_pem},
             "missing-file": {"BERTH_CA_CERT": str(tmp_path / "nope.pem"), "BERTH_CA_KEY": str(key)},
             "garbage": {"BERTH_CA_CERT": "-----BEGIN CERTIFICATE-----\nnope\n", "BERTH_CA_KEY": str(key)}}[problem]
    with pytest.raises(NodeConfigError) as refused:
        prepare_node(node(tmp_path, **given))
    assert "BERTH_CA" in str(refused.value) or "CA" in str(refused.value)
    assert "PRIVATE KEY" not in str(refused.value)  # the key's text is never echoed
    assert not (tmp_path / "data" / "ca").exists()
