"""POST /app-setups and app.json on a first deploy, against a live Berth with its builder and worker
(real sandbox builds, a real first-party add-on): env (value, secret, required, overrides), add-ons,
buildpacks, formation and postdeploy applied; manifest errors, a missing required var and a failing
build leave nothing behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from berth.db import Database
from tests.builds.conftest import APPS, SLOW_BUILDPACK, BuildPlatform, Follower, build_platform
from tests.builds.test_git_push_builds import repository_of
from tests.builtin_platform import server_database, wait_for_worker
from tests.git.test_git_http import git, git_env, remote
from tests.live_server import ROOT, stop
from tests.supervise.conftest import stack_root  # noqa: F401

pytestmark = pytest.mark.slow
SAMPLE = APPS / "app-json"


class WorkerProcess:
    """`python -m berth.worker` beside the live server: add-on operations and app setups."""

    def __init__(self, platform: BuildPlatform) -> None:
        self.platform, self.process, self.starts = platform, None, 0  # type: ignore[var-annotated]

    def start(self) -> None:
        self.starts += 1
        log = self.platform.server.log.with_name(f"worker-{self.starts}.log")
        with log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "berth.worker"], cwd=ROOT,
                                            env=self.platform.server.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        wait_for_worker(self.platform.server, self.process)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture(scope="module")
def worker(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:  # noqa: F811
    """The builds platform with the first-party add-ons and a worker."""
    with build_platform(tmp_path_factory.mktemp("app-setups"), BUILTIN_ADDONS="1") as built:
        running = WorkerProcess(built)
        running.start()
        try:
            yield running
        finally:
            if running.process is not None:
                stop(running.process)


@pytest.fixture(scope="module")
def platform(worker: WorkerProcess) -> BuildPlatform:
    return worker.platform


@pytest.fixture(scope="module")
def database(platform: BuildPlatform) -> Iterator[Database]:
    _settings, database = server_database(platform.server)
    yield database
    database.dispose()


def sample_files(**changes: Any) -> dict[str, str]:
    """The sample app's files, app.json changed by `changes` (a key set to None is removed)."""
    files = {str(path.relative_to(SAMPLE)): path.read_text() for path in SAMPLE.rglob("*") if path.is_file()}
    manifest = json.loads(files["app.json"])
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    files["app.json"] = json.dumps(manifest)
    return files


def wait_for_setup(platform: BuildPlatform, setup_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        setup = platform.call("GET", f"/app-setups/{setup_id}").json()
        if setup["status"] != "pending":
            return setup
        time.sleep(0.5)
    pytest.fail(f"app setup {setup_id} still pending after {timeout} s")


def create_setup(platform: BuildPlatform, name: str, url: str, **body: Any) -> dict[str, Any]:
    created = platform.call("POST", "/app-setups", {"source_blob": {"url": url}, "app": {"name": name}, **body})
    assert created.status_code == 202, created.text
    setup = created.json()
    assert setup["status"] == "pending" and setup["app"]["name"] == name and setup["build"]["status"] == "pending"
    return setup


def test_a_setup_applies_the_whole_manifest_then_runs_postdeploy_once(platform: BuildPlatform) -> None:
    url = platform.upload(SAMPLE)
    setup = create_setup(platform, "from-app-json", url,
                         overrides={"env": {"API_TOKEN": "tok-123", "GREETING": "overridden"}})
    output = requests.get(setup["build"]["output_stream_url"], timeout=600).text
    done = wait_for_setup(platform, setup["id"])
    assert done["status"] == "succeeded", (done, output)
    assert done["manifest_errors"] == [] and done["failure_message"] is None
    assert done["build"]["status"] == "succeeded"
    assert done["resolved_success_url"].endswith("/welcome") and "from-app-json." in done["resolved_success_url"]
    assert "-----> Applying app.json" in output and "Add-ons provisioned" in output

    config = platform.call("GET", "/apps/from-app-json/config-vars").json()
    assert config["GREETING"] == "overridden" and config["API_TOKEN"] == "tok-123"  # overrides win
    assert len(config["SECRET_KEY"]) == 64 and int(config["SECRET_KEY"], 16) >= 0
    assert "OPTIONAL_FLAG" not in config
    assert config["APP_LOGS_URL"].startswith("http")  # the add-on's var, under its `as` name
    [addon] = platform.call("GET", "/apps/from-app-json/addons").json()
    assert addon["state"] == "provisioned" and addon["addon_service"]["name"] == "logs"
    installed = platform.call("GET", "/apps/from-app-json/buildpack-installations").json()
    assert [entry["buildpack"]["name"] for entry in installed] == ["heroku/procfile"]

    # The deploy's release carries every var, the add-on's included.
    deploy = platform.releases("from-app-json")[-1]
    assert deploy["description"].startswith("Deploy") and deploy["current"]
    release_config = platform.call("GET", f"/apps/from-app-json/releases/{deploy['id']}/config-vars").json()
    assert release_config["APP_LOGS_URL"] == config["APP_LOGS_URL"]

    assert done["postdeploy"]["exit_code"] == 0
    seeded = done["postdeploy"]["output"]
    assert "seeding: GREETING=overridden" in seeded and "secret of 64 characters; token tok-123" in seeded
    assert "add-on at http" in seeded and "seeded from /app" in seeded and "dyno postdeploy.1" in seeded
    logs = platform.call("POST", "/apps/from-app-json/log-sessions", {"lines": 100}).json()
    stream = requests.get(logs["logplex_url"], timeout=30).text
    assert "app[postdeploy]: seeding: GREETING=overridden" in stream

    # A second deploy is no first deploy: app.json is not applied again, postdeploy does not run again.
    build = platform.call("POST", "/apps/from-app-json/builds", {"source_blob": {"url": url}}).json()
    assert platform.wait_for("from-app-json", build["id"])["status"] == "succeeded"
    assert platform.call("GET", "/apps/from-app-json/config-vars").json()["SECRET_KEY"] == config["SECRET_KEY"]
    time.sleep(2)  # a worker woken by the build's end would have started a second postdeploy by now
    logs = platform.call("POST", "/apps/from-app-json/log-sessions", {"lines": 1500}).json()
    assert requests.get(logs["logplex_url"], timeout=30).text.count("app[postdeploy]: seeding:") == 1


def test_the_formation_is_stored(platform: BuildPlatform, database: Database) -> None:
    from sqlalchemy import select

    from berth.platform.models import App, Formation

    url = platform.upload(files=sample_files(addons=None, scripts=None, env={"A": "1"}))
    setup = create_setup(platform, "formation-stored", url)
    assert wait_for_setup(platform, setup["id"])["status"] == "succeeded"
    with database.session(write=False) as session:
        app_id = session.scalar(select(App.id).where(App.name == "formation-stored"))
        rows = {row.type: (row.quantity, row.size) for row in session.scalars(
            select(Formation).where(Formation.app_id == app_id))}
    assert rows == {"web": (1, "basic"), "worker": (2, "standard-2x")}


def test_a_manifest_error_creates_nothing(platform: BuildPlatform) -> None:
    url = platform.upload(files=sample_files(formation={"web": {"quantity": -1, "size": "huge"}},
                                             addons=["no-such-service"]))
    setup = create_setup(platform, "bad-manifest", url, overrides={"env": {"API_TOKEN": "x"}})
    done = wait_for_setup(platform, setup["id"])
    assert done["status"] == "failed"
    assert "formation.web.quantity: must be a whole number from 0 to 100" in done["manifest_errors"]
    assert any(error.startswith("formation.web.size: 'huge' is not a dyno size") for error in done["manifest_errors"])
    assert "was destroyed" in done["failure_message"]
    assert platform.call("GET", "/apps/bad-manifest").status_code == 404
    # The build's output stays readable from the setup.
    output = requests.get(done["build"]["output_stream_url"], timeout=60).text
    assert "app.json: formation.web.quantity" in output


def test_an_unknown_addon_plan_is_a_manifest_error_and_nothing_is_applied(platform: BuildPlatform) -> None:
    url = platform.upload(files=sample_files(addons=["logs", "no-such-service:plan"]))
    setup = create_setup(platform, "unknown-plan", url, overrides={"env": {"API_TOKEN": "x"}})
    done = wait_for_setup(platform, setup["id"])
    assert done["status"] == "failed"
    [error] = done["manifest_errors"]
    assert error.startswith("addons.1: no-such-service:plan: Couldn't find")
    assert platform.call("GET", "/apps/unknown-plan").status_code == 404
    names = [addon["app"]["name"] for addon in platform.call("GET", "/addons").json()]
    assert "unknown-plan" not in names


def test_a_required_var_missing_fails_the_setup(platform: BuildPlatform) -> None:
    url = platform.upload(SAMPLE)
    done = wait_for_setup(platform, create_setup(platform, "token-missing", url)["id"])
    assert done["status"] == "failed"
    assert done["manifest_errors"] == ["config var API_TOKEN is required"]
    assert platform.call("GET", "/apps/token-missing").status_code == 404


def test_a_failing_build_fails_the_setup_and_removes_its_addon(platform: BuildPlatform) -> None:
    files = sample_files(buildpacks=[{"url": "heroku/python"}])  # no requirements.txt: python cannot build it
    url = platform.upload(files=files)
    done = wait_for_setup(platform, create_setup(platform, "build-breaks", url,
                                                 overrides={"env": {"API_TOKEN": "x"}})["id"])
    assert done["status"] == "failed" and done["build"]["status"] == "failed"
    assert done["failure_message"].startswith("The build failed: ") and "was destroyed" in done["failure_message"]
    assert done["manifest_errors"] == [] and done["postdeploy"] is None
    assert platform.call("GET", "/apps/build-breaks").status_code == 404
    assert all(addon["app"]["name"] != "build-breaks" for addon in platform.call("GET", "/addons").json())


def test_a_first_git_push_with_app_json_applies_it(platform: BuildPlatform, tmp_path: Path) -> None:
    """The same path on an existing app's first deploy: only vars not set yet; a required one unset
    rejects the push with nothing applied; once set, the manifest is applied and postdeploy runs."""
    platform.make_app("first-push")
    assert platform.call("PATCH", "/apps/first-push/config-vars", {"GREETING": "mine"}).status_code == 200
    env = git_env(platform.server, tmp_path / "home")
    source = repository_of("app-json", tmp_path / "src", env)
    url = remote(platform.server.url, platform.key, "first-push")
    refused = git(source, env, "push", url, "main", ok=False)
    assert "remote:  !     app.json: config var API_TOKEN is required" in refused.stderr
    assert platform.call("GET", "/apps/first-push/config-vars").json() == {"GREETING": "mine"}
    assert platform.call("GET", "/apps/first-push/addons").json() == []

    assert platform.call("PATCH", "/apps/first-push/config-vars", {"API_TOKEN": "t"}).status_code == 200
    pushed = git(source, env, "push", url, "main")
    assert "remote: -----> Applying app.json" in pushed.stderr
    config = platform.call("GET", "/apps/first-push/config-vars").json()
    assert config["GREETING"] == "mine" and len(config["SECRET_KEY"]) == 64 and "APP_LOGS_URL" in config
    installed = platform.call("GET", "/apps/first-push/buildpack-installations").json()
    assert [entry["buildpack"]["name"] for entry in installed] == ["heroku/procfile"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = platform.call("POST", "/apps/first-push/log-sessions", {"lines": 100}).json()
        if "app[postdeploy]: seeding: GREETING=mine" in requests.get(logs["logplex_url"], timeout=30).text:
            break
        time.sleep(0.5)
    else:
        pytest.fail("postdeploy did not run after the first deploy")


def test_a_failed_first_deploy_undoes_what_app_json_applied(platform: BuildPlatform, database: Database) -> None:
    from sqlalchemy import select

    from berth.platform.models import App, Formation

    platform.make_app("undone")
    assert platform.call("PATCH", "/apps/undone/config-vars", {"API_TOKEN": "t"}).status_code == 200
    url = platform.upload(files=sample_files(buildpacks=[{"url": "heroku/python"}]))  # python cannot build it
    build = platform.call("POST", "/apps/undone/builds", {"source_blob": {"url": url}}).json()
    output = requests.get(build["output_stream_url"], timeout=600).text
    assert platform.wait_for("undone", build["id"])["status"] == "failed"
    assert "Add-ons provisioned" in output  # it went that far before the build failed
    deadline = time.monotonic() + 60
    while platform.call("GET", "/apps/undone/config-vars").json() != {"API_TOKEN": "t"}:
        assert time.monotonic() < deadline, platform.call("GET", "/apps/undone/config-vars").json()
        time.sleep(0.5)
    assert [addon["state"] for addon in platform.call("GET", "/apps/undone/addons").json()
            if addon["state"] in ("provisioning", "provisioned")] == []
    assert platform.call("GET", "/apps/undone/buildpack-installations").json() == []
    with database.session(write=False) as session:
        app_id = session.scalar(select(App.id).where(App.name == "undone"))
        assert list(session.scalars(select(Formation).where(Formation.app_id == app_id))) == []


def test_a_builder_killed_mid_setup_fails_the_setup(platform: BuildPlatform) -> None:
    url = platform.upload(files=sample_files(addons=None, scripts=None))
    slow = str(platform.buildpack_root / SLOW_BUILDPACK)
    setup = create_setup(platform, "setup-killed", url,
                         overrides={"env": {"API_TOKEN": "x"}, "buildpacks": [{"url": slow}]})
    follower = Follower(setup["build"]["output_stream_url"])
    follower.wait_for(b"slow buildpack started", timeout=120)
    assert platform.builder is not None
    os.kill(platform.builder.pid, signal.SIGKILL)
    platform.builder.wait()
    platform.start_builder()
    follower.join(timeout=60)
    done = wait_for_setup(platform, setup["id"], timeout=60)  # the worker's sweep finds it
    assert done["status"] == "failed" and "builder stopped" in done["failure_message"]
    assert platform.call("GET", "/apps/setup-killed").status_code == 404


def test_heroku3_creates_and_follows_a_setup(platform: BuildPlatform) -> None:
    import heroku3

    url = platform.upload(files=sample_files(addons=None, scripts=None))
    saved = heroku3.api.HEROKU_URL
    heroku3.api.HEROKU_URL = platform.server.url
    try:
        client = heroku3.from_key(platform.key)
        setup = client.create_appsetup({"url": url}, overrides={"env": {"API_TOKEN": "h3"}},
                                       app={"name": "via-heroku3"})
        assert setup.status == "pending" and setup.app.name == "via-heroku3"
        deadline = time.monotonic() + 300
        while setup.status == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
            setup = client.get_appsetup(setup.id)
    finally:
        heroku3.api.HEROKU_URL = saved
    assert setup.status == "succeeded", setup.failure_message
    assert setup.build.status == "succeeded" and setup.failure_message is None
    assert setup.resolved_success_url.endswith("/welcome")
    assert client.apps()["via-heroku3"].config()["API_TOKEN"] == "h3"


def test_a_worker_killed_mid_postdeploy_fails_the_setup_without_running_it_again(
        platform: BuildPlatform, worker: WorkerProcess) -> None:
    files = sample_files(addons=None, scripts={"postdeploy": "echo started-postdeploy && sleep 600"})
    setup = create_setup(platform, "postdeploy-killed", platform.upload(files=files),
                         overrides={"env": {"API_TOKEN": "x"}})
    deadline = time.monotonic() + 300
    while True:
        logs = platform.call("POST", "/apps/postdeploy-killed/log-sessions", {"lines": 100})
        if logs.ok and "started-postdeploy" in requests.get(logs.json()["logplex_url"], timeout=30).text:
            break
        assert time.monotonic() < deadline, "postdeploy never started"
        time.sleep(0.5)
    worker.kill()
    assert platform.call("GET", f"/app-setups/{setup['id']}").json()["status"] == "pending"
    worker.start()
    done = wait_for_setup(platform, setup["id"], timeout=60)
    assert done["status"] == "failed" and "interrupted" in done["failure_message"]
    assert "it is not run twice" in done["failure_message"]
    assert platform.call("GET", "/apps/postdeploy-killed").status_code == 404
