"""The official Heroku CLI's `heroku builds`, `builds:info`, `builds:output` and `builds:cache:purge`
(the heroku-builds plugin, installed by scripts/install-heroku-cli.sh) against a live Berth whose
builder built the app."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.builds.conftest import APPS, BuildPlatform
from tests.heroku_cli import heroku_cli

pytestmark = pytest.mark.slow


def test_heroku_builds_plugin_lists_shows_and_prints_a_real_build(platform: BuildPlatform, tmp_path: Path) -> None:
    cli = heroku_cli(platform.server.url, platform.key, tmp_path / "home", builds_plugin=True)
    platform.make_app("hk-builds")
    good = platform.call("POST", "/apps/hk-builds/builds", {"source_blob": {
        "url": platform.upload(APPS / "procfile-only"), "version": "v2.5"}}).json()
    built = platform.wait_for("hk-builds", good["id"])
    assert built["status"] == "succeeded", built
    release = platform.call("GET", f"/apps/hk-builds/releases/{built['release']['id']}").json()
    # With a version: heroku-builds 0.0.29's table fails on a null source_blob.version ("Cannot read
    # properties of null"), on Heroku too; git pushes always have one (the commit).
    bad = platform.call("POST", "/apps/hk-builds/builds", {"source_blob": {
        "url": platform.upload(files={"README": "nothing to build\n"}), "version": "broken-1"}}).json()
    assert platform.wait_for("hk-builds", bad["id"])["status"] == "failed"

    listed = cli.ok("builds", "-a", "hk-builds")
    assert "=== hk-builds Builds" in listed
    rows = [line for line in listed.splitlines() if re.match(r"[0-9a-f]{8}-", line)]
    assert [row.split()[0] for row in rows] == [bad["id"], good["id"]]  # newest first
    assert "failed" in rows[0] and "succeeded" in rows[1] and "v2.5" in rows[1]
    assert "builder" in rows[1]  # the user, as the plugin shows it
    assert len(cli.ok("builds", "-n", "1", "-a", "hk-builds").strip().splitlines()[-1].split()) > 1

    info = cli.ok("builds:info", good["id"], "-a", "hk-builds")
    assert f"=== Build {good['id']}" in info
    assert re.search(r"Status:\s+succeeded", info) and re.search(rf"Release:\s+v{release['version']}", info)
    assert re.search(r"By:\s+builder@example.com", info)
    newest = cli.ok("builds:info", "-a", "hk-builds", "--json")
    assert f'"id": "{bad["id"]}"' in newest and '"status": "failed"' in newest

    # The plugin copies the output stream to stderr, as `heroku builds:output` does on Heroku. Its
    # HTTP library reads every entry of SSL_CERT_DIR as a certificate file and fails (EISDIR) on a
    # directory of them with subdirectories, as this machine's has: the stream URL is plain HTTP here.
    printed = cli.run("builds:output", good["id"], "-a", "hk-builds", SSL_CERT_DIR="")
    assert printed.returncode == 0, printed.stderr
    assert "-----> " in printed.stderr and f"Released v{release['version']}" in printed.stderr
    failed = cli.run("builds:output", "-a", "hk-builds", SSL_CERT_DIR="")
    assert failed.returncode == 0 and "nothing was released" in failed.stderr

    missing = cli.run("builds:info", "00000000-0000-0000-0000-000000000000", "-a", "hk-builds")
    assert missing.returncode != 0 and "Couldn't find that build" in missing.stderr

    purged = cli.run("builds:cache:purge", "-a", "hk-builds", "--confirm", "hk-builds")
    assert purged.returncode == 0 and "Purging build cache for" in purged.stderr, purged.stderr
    refused = cli.run("builds:cache:purge", "-a", "hk-builds", "--confirm", "other")
    assert refused.returncode != 0 and "did not match" in refused.stderr
