"""The rendezvous server's tests: a real TLS listener on a free loopback port, with a certificate
from a CA made for the test, and a real client socket."""
from __future__ import annotations

import os
import select
import socket
import ssl
import time
from pathlib import Path

import pytest

from berth import certificates
from berth.platform.rendezvous import RendezvousServer, Tickets
from tests.release_phase.conftest import stack  # noqa: F401  (the sandbox's root filesystem)


@pytest.fixture
def ca(tmp_path: Path) -> certificates.CertificateAuthority:
    return certificates.load_or_create(tmp_path / "ca")


@pytest.fixture
def tickets() -> Tickets:
    return Tickets()


@pytest.fixture
def server(ca, tickets, tmp_path: Path):
    issued = certificates.issue_server(ca, "Berth", ["localhost"], ["127.0.0.1"])
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    certificates.write_private(cert, issued.chain_pem)
    certificates.write_private(key, issued.key_pem)
    started = RendezvousServer("127.0.0.1", 0, cert, key, tickets).start()
    yield started
    started.close()


def dial(server: RendezvousServer, ca: certificates.CertificateAuthority) -> ssl.SSLSocket:
    """A client that trusts only the installation CA and checks the host name, as the CLI does."""
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_all(conn: ssl.SSLSocket, deadline: float = 30.0) -> bytes:
    """Everything until the server closes."""
    data, end = b"", time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            chunk = conn.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data



def read_terminal_until(master: int, marker: bytes, deadline: float) -> bytes:
    """What a client's terminal (`master`, a PTY) shows until `marker`, or until the client exits;
    fails at `deadline` (monotonic)."""
    output = b""
    while marker not in output:
        assert time.monotonic() < deadline, output
        if select.select([master], [], [], 1)[0]:
            try:
                output += os.read(master, 4096)
            except OSError:  # the client exited: its terminal is gone
                break
    return output
