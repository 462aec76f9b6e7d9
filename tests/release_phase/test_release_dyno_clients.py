"""The release phase's dyno through unmodified clients: a live Berth with its builder process (which
runs the release command in the real sandbox), the official Heroku CLI and `berth`. While the
command runs, `heroku ps` and `berth ps` show release.N up; `heroku ps:restart` of it is refused,
`heroku ps:stop --dyno-name` stops it and fails the release, whose output says who stopped it."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.api.test_slugs import slug_tarball
from tests.builds.conftest import BuildPlatform, build_platform
from tests.cli.conftest import Berth, Server
from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow
COMMAND = "echo migrating; sleep 600"


@pytest.fixture(scope="module")
def platform(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildPlatform]:  # noqa: F811
    with build_platform(tmp_path_factory.mktemp("release-dyno")) as built:
        yield built


@pytest.fixture(scope="module")
def cli(platform: BuildPlatform, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(platform.server.url, platform.key, tmp_path_factory.mktemp("heroku-home"))


def release_with_a_release_phase(platform: BuildPlatform, app: str) -> dict[str, Any]:
    platform.make_app(app)
    slug = platform.call("POST", f"/apps/{app}/slugs", {"process_types": {"web": "echo v1", "release": COMMAND}})
    stored = requests.put(slug.json()["blob"]["url"], data=slug_tarball(app), headers={"Content-Type": ""}, timeout=30)
    assert stored.status_code == 200, stored.text
    made = platform.call("POST", f"/apps/{app}/releases", {"slug": slug.json()["id"]})
    assert made.status_code == 201 and made.json()["status"] == "pending", made.text
    return made.json()


def wait_for(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.2)
    return found


def test_heroku_and_berth_ps_show_the_running_release_dyno_and_ps_stop_fails_the_release(
        platform: BuildPlatform, cli: HerokuCLI, tmp_path: Path) -> None:
    app = "release-dyno"
    release_with_a_release_phase(platform, app)
    wait_for(lambda: [(d["name"], d["state"]) for d in platform.call("GET", f"/apps/{app}/dynos").json()]
             == [("release.1", "up")], "release.1 up")

    shown = cli.ok("ps", "-a", app)
    assert f"=== release (Standard-1X): {COMMAND} (1)" in shown, shown
    assert re.search(r"^release\.1: up \d{4}/\d\d/\d\d \d\d:\d\d:\d\d [+-]\d{4} \(~ \d+s ago\)$", shown, re.M), shown
    home = tmp_path / "berth-home"
    home.mkdir()
    berth = Berth(Server(platform.server.url, platform.key, platform.server.env), home)
    ours = berth("ps", "-a", app)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.splitlines()[0] == f"=== release (Standard-1X): {COMMAND} (1)", ours.stdout
    assert ours.stdout.splitlines()[1].startswith("release.1: up "), ours.stdout

    refused = cli.run("ps:restart", "--dyno-name", "release.1", "-a", app)
    assert refused.returncode != 0 and "cannot be restarted" in refused.stderr, refused.stderr
    assert platform.call("GET", f"/apps/{app}/dynos/release.1").json()["state"] == "up"
    stopped = cli.run("ps:stop", "--dyno-name", "release.1", "-a", app)
    assert stopped.returncode == 0 and "Stopping dyno release.1" in stopped.stderr, stopped.stderr

    wait_for(lambda: [r["status"] for r in platform.releases(app)] == ["succeeded", "failed"], "v2 failed")
    assert [r["current"] for r in platform.releases(app)] == [True, False]
    output = cli.ok("releases:output", "v2", "-a", app)
    assert "migrating" in output
    assert "release.1 was stopped by builder@example.com (exited with status 143)" in output, output
    assert f"No dynos on {app}" in cli.ok("ps", "-a", app)
    ended = platform.call("GET", f"/apps/{app}/dynos/release.1").json()
    assert (ended["state"], ended["exit_code"]) == ("down", 143)
