"""`berth builds`, `builds:info` and `builds:output` against a live Berth whose builder built the app."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builds.conftest import APPS, BuildPlatform
from tests.live_server import ROOT

pytestmark = pytest.mark.slow


def berth(platform: BuildPlatform, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "NETRC"))}
    env |= {"HOME": str(home), "BERTH_API_URL": platform.server.url, "BERTH_API_KEY": platform.key,
            "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "berth.cli", *args], env=env, cwd=home, capture_output=True,
                          text=True, timeout=300)


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
