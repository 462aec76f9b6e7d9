"""Real-process fixtures: one Berth server per session, `berth` run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.live_server import ACCEPT, ROOT, clean_env, live_server

EMAIL = "dev@example.com"
PASSWORD = "pw-123456789"
_DEFAULT_KEY = object()  # sentinel: "use the session user's API key"


ErrorLine = Callable[[subprocess.CompletedProcess[str]], str]
NameMaker = Callable[[], str]


@dataclass
class Server:
    url: str
    key: str
    env: dict[str, str]

    def api(self, method: str, path: str, token: str | None = None, *,
            headers: dict[str, str] | None = None, json: Any = None) -> requests.Response:
        """Direct API call, for setting up and checking server state independently of the CLI."""
        sent = {"Accept": ACCEPT, "Authorization": f"Bearer {token or self.key}", **(headers or {})}
        return requests.request(method, self.url + path, headers=sent, json=json, timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The development server (`python app.py`), as `berth` users run it first.
    with live_server(tmp_path_factory.mktemp("berth-server"), workers=None) as live:
        yield Server(live.url, live.create_user(EMAIL, PASSWORD), live.env)


@dataclass
class Berth:
    """Runs `python -m berth.cli` with its own HOME and netrc."""

    server: Server
    home: Path

    @property
    def netrc(self) -> Path:
        return self.home / ".netrc"

    def env(self, key: object = _DEFAULT_KEY) -> dict[str, str]:
        env = {**clean_env(), "HOME": str(self.home), "NETRC": str(self.netrc),
               "BERTH_API_URL": self.server.url, "GIT_CONFIG_NOSYSTEM": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        if key is _DEFAULT_KEY:
            key = self.server.key
        if key:
            env["BERTH_API_KEY"] = str(key)
        return env

    def __call__(self, *args: str, key: object = _DEFAULT_KEY, cwd: Path | None = None,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "berth.cli", *args], env=self.env(key),
                              cwd=cwd or self.home, input=input if input is not None else "",
                              capture_output=True, text=True, timeout=60)


@pytest.fixture
def berth(server: Server, tmp_path: Path) -> Berth:
    home = tmp_path / "home"
    home.mkdir()
    return Berth(server, home)


def unique_name() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def app_name(server: Server) -> Iterator[str]:
    """A fresh app, created through the API (not the CLI) so each test checks one command."""
    name = unique_name()
    resp = server.api("POST", "/apps", json={"name": name})
    assert resp.status_code == 201, resp.text
    yield name
    server.api("DELETE", f"/apps/{name}")


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the command failed the way users should see failures: exit 1, one line, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# Helpers handed out as fixtures: test modules cannot safely import `conftest` by name.
@pytest.fixture
def one_error_line() -> ErrorLine:
    return _one_error_line


@pytest.fixture
def new_name() -> NameMaker:
    return unique_name
