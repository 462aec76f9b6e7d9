"""The release phase end to end: `git push` of a Flask app with a Postgres add-on (the session's
PostgreSQL) to a live Berth with its worker and builder; the release command migrates the
add-on's database before the release goes live, its output comes back as `remote:` lines, through
output_stream_url, `heroku releases:output` and the log stream; a failing or overlong release
command fails the release, keeps the previous one current, and still moves the branch."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
import requests

from berth.addons.postgres.cluster import LocalPostgres
from tests.buildpacks.conftest import host_ca_bundle
from tests.builds.conftest import APPS, BuildPlatform, Follower, running_builder
from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.git.test_git_http import bare_refs, git, git_env, head, remote
from tests.heroku_cli import HerokuCLI, heroku_cli

pytestmark = pytest.mark.slow
TIME_LIMIT = 20  # seconds: BERTH_RELEASE_PHASE_TIMEOUT_SECONDS of this platform


@pytest.fixture(scope="module")
def platform(stack: Path, postgres_server: LocalPostgres,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltinPlatform]:
    """A live Berth with its first-party add-ons and its worker (its builder: `builder`)."""
    settings = {"RELEASE_PHASE_TIMEOUT_SECONDS": str(TIME_LIMIT)}
    bundle = host_ca_bundle()
    if bundle is not None:
        settings["BUILD_CA_BUNDLE"] = str(bundle)
    with builtin_platform(tmp_path_factory.mktemp("release-phase"), postgres_server.admin_url(),
                          "release@example.com", **settings) as running:
        yield running


@pytest.fixture(scope="module")
def builder(platform: BuiltinPlatform) -> Iterator[BuildPlatform]:
    with running_builder(platform.server, platform.key, platform.server.log.parent) as built:
        yield built


@pytest.fixture(scope="module")
def cli(platform: BuiltinPlatform, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(platform.server.url, platform.key, tmp_path_factory.mktemp("cli-home"))


def repository(sample: str, path: Path, env: dict[str, str]) -> Path:
    shutil.copytree(APPS / sample, path, symlinks=True)
    git(path, env, "init", "-q", "-b", "main")
    commit(path, env, f"the {sample} sample app")
    return path


def commit(path: Path, env: dict[str, str], message: str) -> str:
    git(path, env, "add", "-A")
    git(path, env, "commit", "-q", "-m", message)
    return head(path, env)


def releases(platform: BuiltinPlatform, app: str) -> list[dict[str, Any]]:
    return platform.call("GET", f"/apps/{app}/releases").json()


def states(platform: BuiltinPlatform, app: str) -> list[tuple[int, str, bool]]:
    return [(r["version"], r["status"], r["current"]) for r in releases(platform, app)]


def log_lines(platform: BuiltinPlatform, app: str, dyno: str) -> str:
    made = platform.call("POST", f"/apps/{app}/log-sessions", dyno=dyno, lines=100)
    assert made.status_code == 201, made.text
    return requests.get(made.json()["logplex_url"], timeout=30).text


def test_a_push_migrates_the_database_before_the_release_goes_live(platform: BuiltinPlatform, builder: BuildPlatform,
                                                                   cli: HerokuCLI, tmp_path: Path) -> None:
    name = "release-migrates"
    app = platform.call("POST", "/apps", name=name).json()
    assert platform.provision(name, "postgresql:essential-0")["state"] == "provisioned"  # v2: DATABASE_URL
    assert platform.call("PATCH", f"/apps/{name}/config-vars", GREETING="hello").status_code == 200  # v3
    env = git_env(platform.server, tmp_path / "home")
    source = repository("flask-postgres", tmp_path / "src", env)
    url = remote(platform.server.url, platform.key, name)

    pushed = git(source, env, "push", url, "main")
    out = pushed.stderr
    assert "remote: -----> Running release command..." in out
    assert "remote: Release command running as release.1 with GREETING=hello" in out
    assert "remote: PATH=/app/.heroku/python/bin:" in out  # the slug's .profile.d was sourced
    assert "remote: Migrated: table visits is ready" in out
    assert out.index("Migrated") < out.index("remote: -----> Waiting for release.... done.")
    assert states(platform, name)[-1] == (4, "succeeded", True)
    with psycopg.connect(platform.config(name)["DATABASE_URL"], connect_timeout=10) as conn:
        assert conn.execute("SELECT to_regclass('visits') IS NOT NULL").fetchone() == (True,)
    v4 = releases(platform, name)[-1]
    streamed = requests.get(v4["output_stream_url"], timeout=30)
    assert streamed.status_code == 200 and streamed.headers["Content-Type"].startswith("text/plain")
    assert streamed.text.startswith("Release command running as release.1") and "Migrated" in streamed.text
    assert "Migrated: table visits is ready" in cli.ok("releases:output", "v4", "-a", name)
    logged = log_lines(platform, name, "release.1")
    assert "app[release.1]: Migrated: table visits is ready" in logged
    assert "heroku[release.1]: Process exited with status 0" in logged

    # A migration that fails: the push lands (the build succeeded), the release fails, v4 stays current.
    migrate = source / "migrate.py"
    migrate.write_text(migrate.read_text().replace("CREATE TABLE IF NOT EXISTS visits", "CREATE TABLE visits"))
    broken = commit(source, env, "a migration that cannot run twice")
    pushed = git(source, env, "push", url, "main")
    out = pushed.stderr
    assert pushed.returncode == 0 and "Release command running as release.2" in out
    assert 'remote: psycopg.errors.DuplicateTable: relation "visits" already exists' in out
    assert "remote:  !     Release v5 failed: the release command exited with status 1." in out
    assert "remote: -----> Waiting for release.... failed." in out
    assert "The push itself landed (the branch moved to the pushed commit)" in out
    assert broken in bare_refs(platform.server, app["id"])
    assert states(platform, name)[-2:] == [(4, "succeeded", True), (5, "failed", False)]
    listed = {line.split()[0]: line for line in cli.ok("releases", "-a", name).splitlines()
              if line.strip().startswith("v")}
    assert "release command failed" in listed["v5"] and "release command" not in listed["v4"], listed
    info = cli.ok("releases:info", "v5", "-a", name)
    assert "release command failed" in info
    assert "DuplicateTable" in cli.ok("releases:output", "v5", "-a", name)


def test_a_release_command_past_its_time_limit_or_its_runner_fails_the_release(
        platform: BuiltinPlatform, builder: BuildPlatform, cli: HerokuCLI, tmp_path: Path) -> None:
    name = "release-too-slow"
    platform.call("POST", "/apps", name=name)
    env = git_env(platform.server, tmp_path / "home")
    source = repository("procfile-only", tmp_path / "src", env)
    (source / "Procfile").write_text("web: ./serve.sh\nrelease: echo 'release started'; sleep 600\n")
    commit(source, env, "a release command that never ends")
    started = time.monotonic()
    pushed = git(source, env, "push", remote(platform.server.url, platform.key, name), "main")
    assert time.monotonic() - started < TIME_LIMIT + 60
    out = pushed.stderr
    assert "remote: release started" in out
    assert f"ran longer than its time limit ({TIME_LIMIT} seconds) and was stopped" in out
    assert states(platform, name) == [(1, "succeeded", True), (2, "failed", False)]
    assert "release command failed" in cli.ok("releases:info", "-a", name)

    # The builder killed while the command runs: the release fails when a builder starts again.
    slug = releases(platform, name)[-1]["slug"]["id"]
    made = platform.call("POST", f"/apps/{name}/releases", slug=slug).json()
    assert made["status"] == "pending"
    follower = Follower(made["output_stream_url"])
    follower.wait_for(b"release started", timeout=30)
    assert builder.builder is not None
    builder.builder.kill()
    builder.builder.wait(timeout=30)
    assert states(platform, name)[-1] == (3, "pending", False)  # nobody has noticed yet
    builder.start_builder()
    follower.join(timeout=30)
    assert "The builder stopped while the release command ran" in follower.text()
    assert list((Path(platform.server.env["BERTH_DATA_DIR"]) / "runs" / "release-phase").iterdir()) == []
    assert states(platform, name) == [(1, "succeeded", True), (2, "failed", False), (3, "failed", False)]
