"""A sample app of the build core, pushed with git, is live at its web_url through the router."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from tests.builds.conftest import APPS
from tests.git.test_git_http import git, git_env, remote
from tests.runner.conftest import RunPlatform, eventually

pytestmark = pytest.mark.slow


def test_git_push_ends_with_the_app_live_at_its_web_url(run_platform: RunPlatform, tmp_path: Path) -> None:
    app = "run-pushed"
    made = run_platform.built.make_app(app)
    assert made["web_url"] == f"http://{app}.localhost:{run_platform.router_port}/"
    env = git_env(run_platform.built.server, tmp_path / "home")
    source = tmp_path / "src"
    shutil.copytree(APPS / "procfile-only", source)
    (source / "index.html").write_text("pushed and live\n")
    git(source, env, "init", "-q", "-b", "main")
    git(source, env, "add", "-A")
    git(source, env, "commit", "-q", "-m", "first")
    pushed = git(source, env, "push", remote(run_platform.built.server.url, run_platform.built.key, app), "main")
    assert "Verifying deploy... done." in pushed.stderr
    served = eventually(lambda: (lambda answer: answer if answer.status_code == 200 else None)(
        run_platform.get(app, "/index.html") if run_platform.status(app) else requests.Response()),
        what="the pushed app serving")
    assert served.text == "pushed and live\n"
    assert [(row.name, row.state) for row in run_platform.dynos(app)] == [("web.1", "up")]
