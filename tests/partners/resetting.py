"""Start the resetting partner (`resetting_partner.py`) as a real process; read and steer it."""
from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import requests

from tests.live_server import ROOT, clean_env, free_port, stop, wait_until_answering

SCRIPT = Path(__file__).resolve().with_name("resetting_partner.py")


@dataclass
class ResettingPartner:
    base: str  # http://127.0.0.1:PORT

    @property
    def url(self) -> str:
        return self.base + "/heroku/resources"

    def reset_next(self, count: int) -> None:
        """The next `count` resource calls get a TCP reset."""
        assert requests.post(self.base + "/_admin/resets", json={"count": count}, timeout=5).status_code == 200

    def calls(self, kind: str) -> int:
        return int(requests.get(self.base + "/_admin/calls", timeout=5).json().get(kind, 0))

    def manifest(self, service: str = "resetting") -> dict[str, Any]:
        return {"id": service, "api": {"version": "3", "password": "password-1", "regions": ["*"],
                                       "production": {"base_url": self.url}},
                "plans": [{"name": "test", "price": {"cents": 0}, "default": True}]}


@contextlib.contextmanager
def run_resetting_partner(tmp_path: Path) -> Iterator[ResettingPartner]:
    port = free_port()
    log_path = tmp_path / f"resetting-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, str(SCRIPT), str(port)], cwd=ROOT, env=clean_env(),
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    partner = ResettingPartner(f"http://127.0.0.1:{port}")
    try:
        wait_until_answering(partner.base + "/_admin/calls", process, log_path, what="resetting partner")
        yield partner
    finally:
        stop(process)
