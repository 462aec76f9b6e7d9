"""Start the example partner (`example_partner.py`) as a real process for a test or a test module."""
from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import requests

from tests.live_server import ROOT, clean_env, free_port, stop, wait_until_answering

SCRIPT = Path(__file__).resolve().with_name("example_partner.py")


@dataclass
class ExamplePartner:
    base: str            # http://127.0.0.1:PORT
    service: str         # the Basic-auth user the partner expects
    password: str
    sso_salt: str
    client_secret: str
    log: Path

    @property
    def url(self) -> str:
        """The manifest's `base_url`."""
        return self.base + "/heroku/resources"

    @property
    def sso_url(self) -> str:
        return self.base + "/heroku/sso"

    def state(self) -> dict[str, Any]:
        """What the running partner holds and has seen (its `GET /_admin/state`)."""
        answer = requests.get(self.base + "/_admin/state", auth=(self.service, self.password), timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def calls(self, kind: str) -> int:
        return int(self.state()["calls"][kind])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def set_mode(self, mode: str, **options: Any) -> None:
        """Switch the running partner: options are slow_seconds, flaky_failures, and for `canned`
        status and body (a str sent as is, anything else as JSON)."""
        answer = requests.post(self.base + "/_admin/mode", json={"mode": mode, **options},
                               auth=(self.service, self.password), timeout=10)
        assert answer.status_code == 200, answer.text

    def manifest(self, service_id: str | None = None, *, requires: tuple[str, ...] = ()) -> dict[str, Any]:
        """A manifest Berth's `load_manifest` accepts, pointing at this partner. The partner checks
        the Basic-auth user, so another `service_id` than the one it started with gets 401s."""
        endpoints = {"base_url": self.url, "sso_url": self.sso_url}
        return {
            "id": service_id or self.service,
            "name": "Example Partner",
            "api": {
                "version": "3",
                "config_vars_prefix": "EXAMPLE",
                "config_vars": ["EXAMPLE_URL"],
                "password": self.password,
                "sso_salt": self.sso_salt,
                "client_secret": self.client_secret,
                "regions": ["*"],
                "requires": list(requires),
                "production": dict(endpoints),
                "test": dict(endpoints),
            },
            "description": "A third-party example add-on used by Berth's tests.",
            "plans": [
                {"name": "test", "price": {"cents": 0}, "default": True},
                {"name": "premium", "price": {"cents": 1500}},
            ],
        }


@contextlib.contextmanager
def run_example_partner(tmp_path: Path, mode: str = "sync", *, service: str = "example-partner",
                        slow_seconds: float | None = None, flaky_failures: int | None = None,
                        async_delay: float | None = None, client_secret: str | None = None,
                        ) -> Iterator[ExamplePartner]:
    port = free_port()
    partner = ExamplePartner(
        base=f"http://127.0.0.1:{port}", service=service, password=secrets.token_urlsafe(24),
        sso_salt=secrets.token_urlsafe(24), client_secret=client_secret or secrets.token_urlsafe(24),
        log=tmp_path / f"partner-{port}.log")
    # `--flag=value`: a random secret may start with "-", which argparse would take for a flag.
    argv = [sys.executable, str(SCRIPT), f"--port={port}", f"--password={partner.password}",
            f"--mode={mode}", f"--service={service}",
            f"--sso-salt={partner.sso_salt}", f"--client-secret={partner.client_secret}"]
    for flag, value in (("--slow-seconds", slow_seconds), ("--flaky-failures", flaky_failures),
                        ("--async-delay", async_delay)):
        if value is not None:
            argv.append(f"{flag}={value}")
    with partner.log.open("wb") as log:
        process = subprocess.Popen(argv, cwd=ROOT, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        wait_until_answering(partner.base + "/_admin/health", process, partner.log, timeout=20,
                             what="example partner")
        yield partner
    finally:
        stop(process, timeout=10)
