"""Where Berth reaches its own first-party providers: on each process's own URL, whichever
process started last, and even when private targets are not allowed (Berth's default)."""
from __future__ import annotations

import subprocess
import sys
from typing import Iterator

import pytest
import requests

from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.live_server import ROOT, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltinPlatform]:
    with builtin_platform(tmp_path_factory.mktemp("own-address"), None, "ports@example.com",
                          ALLOW_PRIVATE_TARGETS="0") as running:
        yield running


def test_another_process_on_another_port_does_not_repoint_the_providers(platform: BuiltinPlatform) -> None:
    """`make migrate` runs create_app() in a process of its own; with another BERTH_PORT it
    re-registered the providers at an address where nothing listens (every call then failed)."""
    env = {**platform.server.env, "BERTH_PORT": str(free_port())}
    migrate = subprocess.run([sys.executable, "-c", "from berth import create_app; create_app()"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert migrate.returncode == 0, migrate.stderr
    assert platform.call("POST", "/apps", name="ports").status_code == 201
    addon = platform.provision("ports", "logs")
    assert addon["state"] == "provisioned", addon
    sso = platform.call("GET", f"/apps/ports/addons/{addon['name']}/sso").json()
    assert sso["action"] == f"{platform.server.url}/providers/logs/sso"
    # The dashboard takes the form (the signed-in page), at the address the API gave.
    opened = requests.post(sso["action"], data=sso["params"], allow_redirects=False, timeout=10)
    assert opened.status_code == 302, opened.text[:500]


def test_first_party_providers_work_without_allowing_private_targets(platform: BuiltinPlatform) -> None:
    """They listen on Berth's own loopback URL: the one private target always reached."""
    assert platform.server.env["BERTH_ALLOW_PRIVATE_TARGETS"] == "0"
    assert platform.call("POST", "/apps", name="own-logs").status_code == 201
    addon = platform.provision("own-logs", "logs")
    assert addon["state"] == "provisioned", addon
    [drain] = platform.call("GET", "/apps/own-logs/log-drains").json()
    assert drain["addon"]["name"] == addon["name"]
