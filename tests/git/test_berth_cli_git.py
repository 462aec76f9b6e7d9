"""`berth git:remote [-a APP] [-r REMOTE]`, then `git push` to the TLS listener with git trusting
Berth's CA."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.live_server import ROOT, LiveServer, clean_env, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("berth-cli-git"), tls=True) as live:
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.create_user("cli-git@example.com")


def environment(server: LiveServer, key: str, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {**clean_env(), "HOME": str(home), "NETRC": str(home / ".netrc"), "BERTH_API_URL": server.url,
            "BERTH_API_KEY": key, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
            "GIT_SSL_CAINFO": str(Path(server.env["BERTH_DATA_DIR"]) / "ca" / "ca.pem"),
            "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def berth(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(env, cwd, sys.executable, "-m", "berth.cli", *args)


def test_git_remote_then_push(server: LiveServer, key: str, tmp_path: Path) -> None:
    assert server.api("POST", "/apps", key, json={"name": "cli-git-app"}).status_code == 201
    env = environment(server, key, tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "commit", "-q", "--allow-empty", "-m", "x"]):
        assert run(env, work, *argv).returncode == 0
    added = berth(env, work, "git:remote", "-a", "cli-git-app")
    assert added.returncode == 0, added.stderr
    assert run(env, work, "git", "remote", "get-url", "berth").stdout.strip() == \
        f"{server.tls_url}/cli-git-app.git"

    # git asks for credentials after the 401: the key as password, any user name.
    helper = f"!f() {{ echo username=berth; echo password={key}; }}; f"
    assert run(env, work, "git", "config", "credential.helper", helper).returncode == 0
    pushed = run(env, work, "git", "push", "berth", "main")
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: Berth's builder is not running" in pushed.stderr

    # -r names the remote; an existing remote is re-pointed, not duplicated.
    assert run(env, work, "git", "remote", "add", "prod", "https://example.com/x.git").returncode == 0
    repointed = berth(env, work, "git:remote", "-a", "cli-git-app", "-r", "prod")
    assert repointed.returncode == 0, repointed.stderr
    assert run(env, work, "git", "remote", "get-url", "prod").stdout.strip() == f"{server.tls_url}/cli-git-app.git"


def test_git_remote_outside_a_repository_or_for_an_unknown_app_fails_clearly(
        server: LiveServer, key: str, tmp_path: Path) -> None:
    env = environment(server, key, tmp_path / "home")
    outside = berth(env, tmp_path, "git:remote", "-a", "cli-git-app")
    assert outside.returncode == 1 and "not inside a git repository" in outside.stderr
    assert "Traceback" not in outside.stderr
    work = tmp_path / "work"
    work.mkdir()
    assert run(env, work, "git", "init", "-q").returncode == 0
    unknown = berth(env, work, "git:remote", "-a", "no-such-git-app")
    assert unknown.returncode == 1 and "Couldn't find that app" in unknown.stderr
    assert run(env, work, "git", "remote").stdout == ""
