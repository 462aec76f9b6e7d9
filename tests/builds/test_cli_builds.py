"""`berth builds`, `builds:info` and `builds:output` against a live Berth whose builder built the app."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builds.conftest import APPS, BuildPlatform
from tests.live_server import ROOT

pytestmark = pytest.mark.slow


def cli_env(platform: BuildPlatform, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "NETRC"))}
    return env | {"HOME": str(home), "BERTH_API_URL": platform.server.url, "BERTH_API_KEY": platform.key,
                  "PYTHONPATH": str(ROOT)}


def berth(platform: BuildPlatform, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "berth.cli", *args], env=cli_env(platform, home), cwd=home,
                          capture_output=True, text=True, timeout=300)


def berth_on_a_terminal(platform: BuildPlatform, home: Path, *args: str) -> tuple[int, str]:
    """`berth ARGS` with its standard output on a pseudo-terminal, as a person runs it; (exit code, screen)."""
    controller, terminal = pty.openpty()
    env = cli_env(platform, home) | {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env = {k: v for k, v in env.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    process = subprocess.Popen([sys.executable, "-m", "berth.cli", *args], env=env, cwd=home, stdin=subprocess.DEVNULL,
                               stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    return process.wait(timeout=60), screen.decode(errors="replace")


def test_builds_listed_shown_and_their_output_printed(platform: BuildPlatform, tmp_path: Path) -> None:
    platform.make_app("cli-builds")
    good = platform.call("POST", "/apps/cli-builds/builds", {"source_blob": {
        "url": platform.upload(APPS / "procfile-only"), "version": "v1.0"}}).json()
    assert platform.wait_for("cli-builds", good["id"])["status"] == "succeeded"
    bad = platform.call("POST", "/apps/cli-builds/builds", {"source_blob": {
        "url": platform.upload(files={"README": "nothing to build\n"})}}).json()

    # builds:output follows the newest build until it is finished, and exits 1 as it failed.
    followed = berth(platform, tmp_path, "builds:output", "-a", "cli-builds")
    assert followed.returncode == 1 and "nothing was released" in followed.stdout
    assert f"Build {bad['id']} failed" in followed.stderr

    listed = berth(platform, tmp_path, "builds", "-a", "cli-builds")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "=== cli-builds Builds"
    assert lines[1].split()[:2] == [bad["id"], "failed"] and lines[2].split()[:3] == [good["id"], "succeeded", "v1.0"]

    shown = berth(platform, tmp_path, "builds:info", good["id"], "-a", "cli-builds")
    assert shown.returncode == 0 and "Status:  succeeded" in shown.stdout and "Version: v1.0" in shown.stdout
    as_json = json.loads(berth(platform, tmp_path, "builds:info", "-a", "cli-builds", "--json").stdout)
    assert as_json["id"] == bad["id"]
    output = berth(platform, tmp_path, "builds:output", good["id"], "-a", "cli-builds")
    assert output.returncode == 0 and "Released v" in output.stdout
    assert "✓" not in output.stdout and "\x1b[" not in output.stdout  # piped: the plain lines only
    stages = [line.removeprefix("-----> ").strip() for line in output.stdout.splitlines() if line.startswith("-----> ")]
    assert len(stages) >= 2

    # On a terminal: a progress line per stage, each marked done when the build succeeded.
    code, screen = berth_on_a_terminal(platform, tmp_path, "builds:output", good["id"], "-a", "cli-builds")
    assert code == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    for stage in stages:
        assert re.search(rf"✓ {re.escape(stage)}\s+\d:\d\d:\d\d", plain), (stage, plain)
