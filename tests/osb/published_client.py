"""A published Open Service Broker client that Berth did not write, driving Berth's broker: the
Kubernetes service catalog's Go library, sigs.k8s.io/go-open-service-broker-client/v2, behind a small
driver (tests/osb/goclient/main.go: one broker step per run, one JSON object out). The library and its
dependencies come from the Go module proxy at the versions go.sum pins; scripts/build-osb-client.sh
(`make setup`) builds the driver into .cache/osb-client/, and `published_client()` builds it there
itself when that has not happened yet."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import ROOT, LiveServer, clean_env

LIBRARY = "sigs.k8s.io/go-open-service-broker-client/v2"
BUILD_SCRIPT = ROOT / "scripts" / "build-osb-client.sh"


def driver_binary() -> Path:
    """The built driver; built now (about a minute, once per driver version) if it is not yet."""
    built = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-path"], capture_output=True, text=True,
                           timeout=900, stdin=subprocess.DEVNULL)
    if built.returncode != 0:
        pytest.fail(f"could not build the published OSB client ({LIBRARY}) with {BUILD_SCRIPT}:\n"
                    f"{built.stderr[-4000:]}")
    return Path(built.stdout.strip())


def create_osb_client(server: LiveServer, email: str) -> tuple[str, str]:
    """`python -m berth.admin create-osb-client EMAIL`: the platform credential it prints, and only that."""
    made = subprocess.run([sys.executable, "-m", "berth.admin", "create-osb-client", email], cwd=ROOT,
                          env=server.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert len(lines) == 1 and ":" in lines[0], f"expected one USERNAME:PASSWORD line: {made.stdout!r}"
    username, password = lines[0].split(":", 1)
    return username, password


@dataclass(frozen=True)
class Answer:
    """What the library made of one step: its result, or its error in its own terms (`kind` is the
    library's classification: AsyncRequired, Gone, Conflict, HTTPStatusCodeError, ClientError...)."""

    ok: bool
    result: Any
    error: dict[str, Any]
    stderr: str


@dataclass(frozen=True)
class PublishedClient:
    binary: Path
    broker_url: str  # <berth>/osb
    username: str
    password: str
    ca_file: Path | None  # the CA that signed an https broker's certificate
    api_version: str = "2.14"

    def at(self, api_version: str) -> "PublishedClient":
        return dataclasses.replace(self, api_version=api_version)

    def signed_in_as(self, username: str, password: str) -> "PublishedClient":
        return dataclasses.replace(self, username=username, password=password)

    def trusting(self, ca_file: Path | None) -> "PublishedClient":
        return dataclasses.replace(self, ca_file=ca_file)

    def run(self, step: str, **flags: str | bool) -> Answer:
        """One step (`catalog`, `provision`, `bind`, ...); flags by name, `poll_timeout` = -poll-timeout."""
        argv = [str(self.binary), "-url", self.broker_url, "-api-version", self.api_version,
                *(["-ca-file", str(self.ca_file)] if self.ca_file else []), step]
        argv += [f"-{name.replace('_', '-')}={str(value).lower() if isinstance(value, bool) else value}"
                 for name, value in flags.items()]
        env = {**clean_env(), "OSB_BROKER_USERNAME": self.username, "OSB_BROKER_PASSWORD": self.password}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode in (0, 1), f"osb-driver {step} exited {done.returncode}:\n{done.stderr}"
        answer = json.loads(done.stdout)
        assert answer["ok"] == (done.returncode == 0), done.stdout
        return Answer(answer["ok"], answer.get("result"), answer.get("error", {}), done.stderr)

    def ok(self, step: str, **flags: str | bool) -> Any:
        answer = self.run(step, **flags)
        assert answer.ok, f"the client failed {step}: {answer.error}"
        return answer.result

    def refused(self, step: str, **flags: str | bool) -> dict[str, Any]:
        answer = self.run(step, **flags)
        assert not answer.ok, f"the client accepted {step}: {answer.result}"
        return answer.error


def published_client(server: LiveServer, email: str) -> PublishedClient:
    """The library signed in with a new platform credential owned by the account `email`; over
    https, trusting Berth's CA, when the server has its TLS listener (as a platform registers a broker)."""
    username, password = create_osb_client(server, email)
    if server.tls_url:
        ca = Path(server.env["BERTH_DATA_DIR"]) / "ca" / "ca.pem"
        return PublishedClient(driver_binary(), f"{server.tls_url}/osb", username, password, ca)
    return PublishedClient(driver_binary(), f"{server.url}/osb", username, password, None)
