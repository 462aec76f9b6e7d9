"""The official Heroku CLI, unmodified, puts an app's git remote on Berth's TLS listener, and
`git push heroku main` reaches Berth through the CLI's own credential helper."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.heroku_cli import BINARY, HerokuCLI, heroku_cli
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("heroku-git"), tls=True) as live:
        yield live


def test_heroku_create_git_remote_and_git_push_heroku_main(server: LiveServer, tmp_path: Path) -> None:
    assert server.tls_url
    git_host = server.tls_url.removeprefix("https://")
    key = server.create_user("heroku-git@example.com")
    cli: HerokuCLI = heroku_cli(server.url, key, tmp_path / "home")
    ca = Path(server.env["BERTH_DATA_DIR"]) / "ca" / "ca.pem"
    env = {**cli.env(HEROKU_GIT_HOST=git_host), "GIT_SSL_CAINFO": str(ca), "GIT_TERMINAL_PROMPT": "0",
           "GIT_CONFIG_NOSYSTEM": "1", "PATH": f"{BINARY.parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
        return done

    work = tmp_path / "work"
    work.mkdir()
    run("git", "init", "-q", "-b", "main", cwd=work)
    (work / "Procfile").write_text("web: python -m http.server $PORT\n")
    run("git", "add", "-A", cwd=work)
    run("git", "commit", "-q", "-m", "first", cwd=work)
    run(str(BINARY), "create", "heroku-git-app", "--no-remote", cwd=work)
    run(str(BINARY), "git:remote", "-a", "heroku-git-app", cwd=work)
    url = run("git", "remote", "get-url", "heroku", cwd=work).stdout.strip()
    assert url == f"https://{git_host}/heroku-git-app.git"

    pushed = run("git", "push", "heroku", "main", cwd=work)
    assert "remote: Berth's builder is not running" in pushed.stderr
    app = server.api("GET", "/apps/heroku-git-app", key).json()
    repo = Path(server.env["BERTH_DATA_DIR"]) / "git" / "repos" / f"{app['id']}.git"
    stored = subprocess.run(["git", "--git-dir", str(repo), "rev-parse", "refs/heads/main"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert stored == run("git", "rev-parse", "HEAD", cwd=work).stdout.strip()
