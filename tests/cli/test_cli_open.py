"""`berth open`: the app's web URL (plus a path) handed to the browser, and printed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth


def run_open(berth: "Berth", browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "berth.cli", "open", *args], env={**berth.env(), "BROWSER": browser},
                          cwd=berth.home, capture_output=True, text=True, timeout=60)


def test_open_hands_the_web_url_to_the_browser(berth: "Berth", app_name: str, tmp_path: Path) -> None:
    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    web_url = berth.server.api("GET", f"/apps/{app_name}").json()["web_url"]
    result = run_open(berth, str(browser), "-a", app_name)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Opening {web_url}\n"
    with_path = run_open(berth, str(browser), "/admin?x=1", "-a", app_name)
    assert with_path.returncode == 0, with_path.stderr
    assert opened.read_text().splitlines() == [web_url, web_url + "admin?x=1"]


def test_open_without_a_browser_says_what_to_do(berth: "Berth", app_name: str, tmp_path: Path) -> None:
    result = run_open(berth, str(tmp_path / "no-such-browser"), "-a", app_name)
    assert result.returncode == 0
    assert result.stdout.startswith("Opening http://") and "open that address yourself" in result.stderr


def test_open_an_app_that_is_not_there_fails(berth: "Berth", one_error_line) -> None:
    result = run_open(berth, "true", "-a", "no-such-app-here")
    assert "no-such-app-here" in one_error_line(result) or "Couldn't find" in one_error_line(result)
