"""A real nginx router (as its unprivileged account) and real upstream web dynos, each in its
own process, started once per module; tests isolate themselves by app name."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from berth import certificates
from berth.platform.router.nginx import NginxRouter
from berth.platform.router.nginx_config import RouterLayout
from berth.supervise.ports import free_loopback_port, listening
from berth.supervise.readiness import wait_until

UPSTREAM_APP = Path(__file__).with_name("upstream_app.py")


class Upstreams:
    """Upstream web dynos by name; each is a Python HTTP server on a free loopback port."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.addresses: dict[str, str] = {}

    def start(self, name: str) -> str:
        port = free_loopback_port()
        child = subprocess.Popen([sys.executable, str(UPSTREAM_APP), name, str(port)])
        self.children[name] = child
        assert wait_until(lambda: listening("127.0.0.1", port), 10), f"upstream {name} did not start"
        self.addresses[name] = f"127.0.0.1:{port}"
        return self.addresses[name]

    def stop_all(self) -> None:
        for child in self.children.values():
            child.kill()
            child.wait()


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    started = Upstreams()
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> certificates.CertificateAuthority:
    return certificates.installation_ca(tmp_path_factory.mktemp("router-data"))


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory,
           ca: certificates.CertificateAuthority) -> Iterator[NginxRouter]:
    layout = RouterLayout(prefix=tmp_path_factory.mktemp("router") / "nginx", listen_host="127.0.0.1",
                          port=free_loopback_port(), tls_port=free_loopback_port(), first_byte_timeout_s=2)
    running = NginxRouter(layout, ca, apps_domain="apps.test")
    running.start()
    yield running
    running.stop()
