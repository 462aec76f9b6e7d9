"""login, logout, auth:token, auth:whoami against a real server."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine

EMAIL = "dev@example.com"
PASSWORD = "pw-123456789"


def _machine(berth: Berth) -> str:
    return urlsplit(berth.server.url).netloc


def test_login_writes_private_netrc_used_by_later_commands(berth: Berth) -> None:
    berth.netrc.write_text("machine example.org login someone password keep-me\n")
    result = berth("login", "--email", EMAIL, "--password", PASSWORD, key=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Logged in as {EMAIL}\n"

    assert stat.S_IMODE(berth.netrc.stat().st_mode) == 0o600
    text = berth.netrc.read_text()
    assert "machine example.org login someone password keep-me" in text
    words = text.split()
    i = words.index(_machine(berth))
    assert words[i - 1] == "machine" and words[i + 1:i + 3] == ["login", EMAIL]
    token = words[i + 4]
    assert words[i + 3] == "password" and token != berth.server.key  # a new login token

    whoami = berth("auth:whoami", key=None)
    assert (whoami.returncode, whoami.stdout) == (0, f"{EMAIL}\n"), whoami.stderr
    assert berth("auth:token", key=None).stdout == f"{token}\n"


def test_login_prompts_for_email_and_password(berth: Berth) -> None:
    result = berth("login", key=None, input=f"{EMAIL}\n{PASSWORD}\n")
    assert result.returncode == 0, result.stderr
    assert f"Logged in as {EMAIL}" in result.stdout
    assert PASSWORD not in result.stdout  # hidden input


def test_login_with_wrong_password_fails_in_one_line(berth: Berth, one_error_line: ErrorLine) -> None:
    result = berth("login", "--email", EMAIL, "--password", "wrong-password", key=None)
    assert "unauthorized" in one_error_line(result)
    assert not berth.netrc.exists()


def test_logout_revokes_token_and_removes_entry(berth: Berth) -> None:
    berth.netrc.write_text("machine example.org login someone password keep-me\n")
    assert berth("login", "--email", EMAIL, "--password", PASSWORD, key=None).returncode == 0
    token = berth("auth:token", key=None).stdout.strip()

    result = berth("logout", key=None)
    assert (result.returncode, result.stdout) == (0, "Logged out\n"), result.stderr
    text = berth.netrc.read_text()
    assert _machine(berth) not in text and "keep-me" in text
    assert berth.server.api("GET", "/account", token=token).status_code == 401
    assert berth.server.api("GET", "/account").status_code == 200  # default key untouched


def test_not_logged_in(berth: Berth) -> None:
    result = berth("apps", key=None)
    assert result.returncode == 1
    assert result.stderr == "Error: not logged in. Run berth login (or set BERTH_API_KEY).\n"


def test_env_key_overrides_netrc(berth: Berth) -> None:
    berth.netrc.write_text(f"machine {_machine(berth)} login x@example.com password stale-token\n")
    result = berth("auth:whoami")
    assert (result.returncode, result.stdout) == (0, f"{EMAIL}\n"), result.stderr
    assert berth("auth:token").stdout == f"{berth.server.key}\n"


def test_invalid_key_is_one_line_error(berth: Berth, one_error_line: ErrorLine) -> None:
    assert "(unauthorized)" in one_error_line(berth("auth:whoami", key="not-a-real-key"))


def test_whoami_json(berth: Berth) -> None:
    result = berth("auth:whoami", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["email"] == EMAIL
