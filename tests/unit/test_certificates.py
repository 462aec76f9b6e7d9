"""The installation CA: made once (even by racing processes), private key 0600, and the server
certificates it issues verify for their DNS names and IP addresses, in a real TLS handshake too.
CAs of their own (Kafka's) in a directory that holds other files, and client certificates in a
mutual-TLS handshake."""
from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from berth.certificates import (
    CAError,
    common_name,
    installation_ca,
    issue_client,
    issue_peer,
    issue_server,
    load,
    load_or_create,
    split_hosts,
    write_private,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_ca_is_made_once_with_a_private_key_and_a_public_certificate(tmp_path: Path) -> None:
    ca = installation_ca(tmp_path / "data")
    directory = tmp_path / "data" / "ca"
    assert ca.directory == directory and ca.cert_path == directory / "ca.pem"
    assert stat.S_IMODE((directory / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "ca.pem").stat().st_mode) == 0o644
    assert sorted(p.name for p in directory.iterdir()) == ["ca.key", "ca.pem"]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["ca"]  # nothing left aside
    assert installation_ca(tmp_path / "data").cert_pem == ca.cert_pem
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca


def test_racing_processes_all_get_the_same_ca(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from berth.certificates import installation_ca; "
            "sys.stdout.write(installation_ca(Path(sys.argv[1])).cert_pem)")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True) for _ in range(8)]
    seen = {racer.communicate(timeout=60)[0] for racer in racers}
    assert all(racer.returncode == 0 for racer in racers)
    assert len(seen) == 1 and seen.pop() == (tmp_path / "ca" / "ca.pem").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["ca"]


def test_a_server_certificate_chains_to_the_ca_for_its_names_and_addresses(tmp_path: Path) -> None:
    ca = installation_ca(tmp_path)
    issued = issue_server(ca, "berth-redis", dns_names=["localhost", "redis.example"],
                          ip_addresses=["127.0.0.1", "::1"])
    leaf = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "redis.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                        ipaddress.ip_address("::1")]
    assert issued.chain_pem == issued.cert_pem + ca.cert_pem
    store = Store([ca.certificate])
    for subject in (x509.DNSName("redis.example"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        PolicyBuilder().store(store).build_server_verifier(subject).verify(leaf, [])
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName("other.example")).verify(leaf, [])
    other_ca = installation_ca(tmp_path / "elsewhere")
    with pytest.raises(VerificationError):
        PolicyBuilder().store(Store([other_ca.certificate])).build_server_verifier(
            x509.DNSName("localhost")).verify(leaf, [])


def test_a_client_trusting_ca_pem_completes_a_tls_handshake_on_127_0_0_1(tmp_path: Path) -> None:
    ca = installation_ca(tmp_path / "data")
    issued = issue_server(ca, "test-server", ip_addresses=["127.0.0.1"])
    write_private(tmp_path / "server.key", issued.key_pem)
    (tmp_path / "server.pem").write_text(issued.chain_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with server_context.wrap_socket(connection, server_side=True) as tls:
            tls.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(5) == b"hello"
    thread.join(timeout=10)
    listener.close()


def test_a_ca_of_its_own_is_made_once_in_a_directory_that_holds_other_files(tmp_path: Path) -> None:
    directory = tmp_path / "admin"
    directory.mkdir(mode=0o700)
    (directory / "client.pem").write_text("kept")
    code = ("import sys; from pathlib import Path; from berth.certificates import load_or_create; "
            "sys.stdout.write(load_or_create(Path(sys.argv[1]), 'Berth Kafka admin CA').cert_pem)")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(directory)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True) for _ in range(4)]
    seen = {racer.communicate(timeout=60)[0] for racer in racers}
    assert all(racer.returncode == 0 for racer in racers) and len(seen) == 1
    ca = load(directory)
    assert seen.pop() == ca.cert_pem and common_name(ca.cert_pem) == "Berth Kafka admin CA"
    assert (directory / "client.pem").read_text() == "kept"
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) == ["ca.key", "ca.pem",
                                                                                          "client.pem"]
    assert not [p for p in directory.iterdir() if p.is_dir()]  # nothing left aside
    assert stat.S_IMODE((directory / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700  # the directory's own mode is kept
    assert load_or_create(directory).cert_pem == ca.cert_pem  # an existing CA is never replaced


def test_a_key_without_its_certificate_is_reported_not_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "kafka"
    directory.mkdir()
    write_private(directory / "ca.key", "operator's key")
    with pytest.raises(CAError, match="ca.pem"):
        load_or_create(directory)
    assert (directory / "ca.key").read_text() == "operator's key"


def test_client_and_peer_certificates_authenticate_in_a_mutual_tls_handshake(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "kafka-ca", "Berth Kafka CA")
    assert common_name(ca.cert_pem) == "Berth Kafka CA"
    peer = issue_peer(ca, "berth-kafka-admin", *split_hosts(["127.0.0.1", "localhost"]))
    client = issue_client(ca, "kafka-0123abcd")
    leaf = x509.load_pem_x509_certificate(client.cert_pem.encode())
    assert leaf.subject.rfc4514_string() == "CN=kafka-0123abcd"
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    for name, issued in (("peer", peer), ("client", client)):
        write_private(tmp_path / f"{name}.key", issued.key_pem)
        (tmp_path / f"{name}.pem").write_text(issued.chain_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "peer.pem", tmp_path / "peer.key")
    server_context.load_verify_locations(cafile=str(ca.cert_path))
    server_context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[object] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with server_context.wrap_socket(connection, server_side=True) as tls:
            seen.append(tls.getpeercert()["subject"])
            tls.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(ca.cert_path))
    client_context.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.recv(5) == b"hello"
    thread.join(timeout=10)
    listener.close()
    assert seen == [((("commonName", "kafka-0123abcd"),),)]


def test_a_server_certificate_needs_a_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        issue_server(installation_ca(tmp_path), "nameless")


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path) -> None:
    installation_ca(tmp_path / "one")
    installation_ca(tmp_path / "two")
    (tmp_path / "one" / "ca" / "ca.key").write_bytes((tmp_path / "two" / "ca" / "ca.key").read_bytes())
    with pytest.raises(CAError, match="do not belong together"):
        load(tmp_path / "one" / "ca")


def test_write_private_is_0600_and_leaves_nothing_aside(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "server.key"
    write_private(path, "first")
    write_private(path, "second")
    assert path.read_text() == "second" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["server.key"]
