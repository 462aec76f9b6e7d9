"""git over smart HTTP and TLS, with the real git client against a live Berth (gunicorn plus the
TLS listener as `make run` starts it): push, fetch, clone, who may, what is refused."""
from __future__ import annotations

import base64
import gzip
import http.client
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
MAX_PUSH_BYTES = 2_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("git-http"), tls=True,
                     GIT_MAX_PUSH_BYTES=str(MAX_PUSH_BYTES)) as live:
        yield live


@pytest.fixture(scope="module")
def owner_key(server: LiveServer) -> str:
    return server.create_user("git-owner@example.com")


@pytest.fixture(scope="module")
def stranger_key(server: LiveServer) -> str:
    return server.create_user("git-stranger@example.com")


def data_dir(server: LiveServer) -> Path:
    return Path(server.env["BERTH_DATA_DIR"])


def git_env(server: LiveServer, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0", "GIT_SSL_CAINFO": str(data_dir(server) / "ca" / "ca.pem"),
            "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "t@example.com", "LANG": "C"}


def git(cwd: Path, env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, f"git {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def remote(base: str, key: str, app: str) -> str:
    scheme, _, rest = base.partition("://")
    return f"{scheme}://anyone:{key}@{rest}/{app}.git"


def make_app(server: LiveServer, key: str, name: str) -> dict[str, str]:
    made = server.api("POST", "/apps", key, json={"name": name})
    assert made.status_code == 201, made.text
    return made.json()


def work_tree(path: Path, env: dict[str, str], *files: tuple[str, bytes]) -> Path:
    path.mkdir(parents=True)
    git(path, env, "init", "-q", "-b", "main")
    for name, content in files or (("Procfile", b"web: python -m http.server $PORT\n"),):
        (path / name).write_bytes(content)
    git(path, env, "add", "-A")
    git(path, env, "commit", "-q", "-m", "first")
    return path


def head(path: Path, env: dict[str, str]) -> str:
    return git(path, env, "rev-parse", "HEAD").stdout.strip()


def bare_refs(server: LiveServer, app_id: str) -> str:
    repo = data_dir(server) / "git" / "repos" / f"{app_id}.git"
    if not repo.exists():
        return ""
    return subprocess.run(["git", "--git-dir", str(repo), "for-each-ref"], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.parametrize("over", ["http", "tls"])
def test_push_then_clone_and_fetch(server: LiveServer, owner_key: str, tmp_path: Path, over: str) -> None:
    base = server.url if over == "http" else server.tls_url
    assert base
    name = f"git-push-{over}"
    make_app(server, owner_key, name)
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env)
    pushed = git(source, env, "push", remote(base, owner_key, name), "main")
    # No builder runs beside this server: the push is kept, and the pusher told nothing was built.
    assert "remote: Berth's builder is not running" in pushed.stderr
    assert "stored but not built or released" in pushed.stderr

    clone = tmp_path / "clone"
    git(tmp_path, env, "clone", "-q", remote(base, owner_key, name), str(clone))
    assert head(clone, env) == head(source, env)
    assert (clone / "Procfile").read_bytes() == (source / "Procfile").read_bytes()

    (source / "second.txt").write_text("more\n")
    git(source, env, "add", "-A")
    git(source, env, "commit", "-q", "-m", "second")
    git(source, env, "push", "-q", remote(base, owner_key, name), "main")
    git(clone, env, "pull", "-q", "--ff-only")
    assert head(clone, env) == head(source, env)


def test_tls_listener_serves_the_api_with_a_certificate_for_127_0_0_1(server: LiveServer, owner_key: str) -> None:
    ca = data_dir(server) / "ca" / "ca.pem"
    answer = requests.get(f"{server.tls_url}/account", verify=str(ca), timeout=10,
                          headers={"Accept": "application/vnd.heroku+json; version=3",
                                   "Authorization": f"Bearer {owner_key}"})
    assert answer.status_code == 200 and answer.json()["email"] == "git-owner@example.com"


def test_git_url_names_the_tls_listener(server: LiveServer, owner_key: str) -> None:
    app = make_app(server, owner_key, "git-url-app")
    assert app["git_url"] == f"{server.tls_url}/git-url-app.git"


def test_no_key_or_a_wrong_key_is_asked_for_basic_credentials(server: LiveServer, owner_key: str,
                                                               tmp_path: Path) -> None:
    make_app(server, owner_key, "git-auth")
    for auth in (None, ("anyone", "not-a-key")):
        answer = requests.get(f"{server.url}/git-auth.git/info/refs", params={"service": "git-upload-pack"},
                              auth=auth, timeout=10)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
        assert answer.json()["id"] == "unauthorized"
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env)
    refused = git(source, env, "push", remote(server.url, "not-a-key", "git-auth"), "main", ok=False)
    assert refused.returncode != 0 and "Authentication failed" in refused.stderr


def test_a_stranger_finds_no_repository_and_a_collaborator_pushes_and_fetches(
        server: LiveServer, owner_key: str, stranger_key: str, tmp_path: Path) -> None:
    app = make_app(server, owner_key, "git-shared")
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env)
    for verb in (["push", remote(server.url, stranger_key, "git-shared"), "main"],
                 ["ls-remote", remote(server.url, stranger_key, "git-shared")],
                 ["ls-remote", remote(server.url, stranger_key, app["id"])]):
        refused = git(source, env, *verb, ok=False)
        assert refused.returncode != 0 and "not found" in refused.stderr, refused.stderr
    assert bare_refs(server, app["id"]) == ""

    collaborator_key = server.create_user("git-collaborator@example.com")
    added = server.api("POST", "/apps/git-shared/collaborators", owner_key,
                       json={"user": "git-collaborator@example.com"})
    assert added.status_code == 201, added.text
    git(source, env, "push", "-q", remote(server.url, collaborator_key, "git-shared"), "main")
    listed = git(source, env, "ls-remote", remote(server.url, collaborator_key, app["id"])).stdout
    assert f"{head(source, env)}\trefs/heads/main" in listed


def test_a_push_to_another_branch_or_a_tag_is_refused_and_changes_nothing(
        server: LiveServer, owner_key: str, tmp_path: Path) -> None:
    app = make_app(server, owner_key, "git-branches")
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env)
    url = remote(server.url, owner_key, "git-branches")
    refused = git(source, env, "push", url, "main:feature", ok=False)
    assert refused.returncode != 0
    assert "remote: Pushing to refs/heads/feature is not allowed: Berth deploys only main or master" in refused.stderr
    git(source, env, "tag", "v1")
    both = git(source, env, "push", url, "main", "v1", ok=False)  # one bad ref refuses the whole push
    assert both.returncode != 0 and "refs/tags/v1 is not allowed" in both.stderr
    assert bare_refs(server, app["id"]) == ""

    git(source, env, "push", "-q", url, "main:master")  # master is a deploy branch too
    deleted = git(source, env, "push", url, ":master", ok=False)
    assert deleted.returncode != 0
    assert f"{head(source, env)} commit\trefs/heads/master" in bare_refs(server, app["id"])


def test_a_push_over_the_size_limit_is_refused(server: LiveServer, owner_key: str, tmp_path: Path) -> None:
    app = make_app(server, owner_key, "git-huge")
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env, ("blob.bin", os.urandom(3 * MAX_PUSH_BYTES // 2)))
    refused = git(source, env, "push", remote(server.url, owner_key, "git-huge"), "main", ok=False)
    assert refused.returncode != 0, refused.stderr
    assert "remote: fatal: pack exceeds maximum allowed size" in refused.stderr
    assert bare_refs(server, app["id"]) == ""


def raw_get(server: LiveServer, path: str, auth: tuple[str, str]) -> tuple[int, bytes]:
    """GET `path` exactly as written (requests would resolve the dots first)."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    try:
        token = base64.b64encode(":".join(auth).encode()).decode()
        connection.request("GET", path, headers={"Authorization": f"Basic {token}"})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_paths_outside_an_apps_repository_are_not_served(server: LiveServer, owner_key: str) -> None:
    app = make_app(server, owner_key, "git-paths")
    auth = ("anyone", owner_key)
    for path in ("/../git-paths.git/info/refs", "/%2e%2e/git-paths.git/info/refs",
                 "/git-paths.git/../../ca/ca.key", "/git-paths.git/%2e%2e/%2e%2e/ca/ca.key",
                 "/git-paths.git/config", "/git-paths.git/HEAD", "/git-paths.git/objects/info/packs",
                 f"/{app['id']}.git/hooks/pre-receive", "/..%2fgit-paths.git/info/refs"):
        status, body = raw_get(server, f"{path}?service=git-upload-pack", auth)
        assert status == 404, (path, status, body[:200])
    dumb = requests.get(f"{server.url}/git-paths.git/info/refs", auth=auth, timeout=10)
    assert dumb.status_code == 403 and "smart HTTP" in dumb.json()["message"]


def test_a_repositorys_own_config_cannot_run_a_hook(server: LiveServer, owner_key: str, tmp_path: Path) -> None:
    """Whatever ends up in a repository's config (hooksPath, a pack hook), git runs Berth's hooks only."""
    app = make_app(server, owner_key, "git-planted")
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env)
    url = remote(server.url, owner_key, "git-planted")
    git(source, env, "push", "-q", url, "main")
    trap = tmp_path / "trap"
    trap.mkdir()
    marker = tmp_path / "ran"
    for hook in ("pre-receive", "post-receive", "update", "post-update", "reference-transaction"):
        (trap / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (trap / hook).chmod(0o755)
    repo = data_dir(server) / "git" / "repos" / f"{app['id']}.git"
    with (repo / "config").open("a") as config:
        config.write(f"[core]\n\thooksPath = {trap}\n[uploadpack]\n\tpackObjectsHook = touch {marker};\n"
                     f"[receive]\n\tdenyNonFastForwards = true\n\tfsckObjects = false\n")
    (source / "more.txt").write_text("more\n")
    git(source, env, "add", "-A")
    git(source, env, "commit", "-q", "-m", "more")
    pushed = git(source, env, "push", url, "main")
    assert "Berth's builder is not running" in pushed.stderr  # Berth's hook ran
    git(tmp_path, env, "clone", "-q", url, str(tmp_path / "clone"))
    assert not marker.exists()


def test_renaming_keeps_the_repository_and_destroying_removes_it(server: LiveServer, owner_key: str,
                                                                 tmp_path: Path) -> None:
    app = make_app(server, owner_key, "git-renamed")
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env)
    git(source, env, "push", "-q", remote(server.url, owner_key, "git-renamed"), "main")
    assert server.api("PATCH", "/apps/git-renamed", owner_key, json={"name": "git-renamed-2"}).status_code == 200
    listed = git(source, env, "ls-remote", remote(server.url, owner_key, "git-renamed-2")).stdout
    assert head(source, env) in listed
    repo = data_dir(server) / "git" / "repos" / f"{app['id']}.git"
    assert repo.is_dir()
    assert server.api("DELETE", "/apps/git-renamed-2", owner_key).status_code == 200
    assert not repo.exists()


def test_a_gzip_request_body_is_inflated_for_git(server: LiveServer, owner_key: str, tmp_path: Path) -> None:
    """git gzips upload-pack requests; http-backend inflates them as they stream through."""
    make_app(server, owner_key, "git-gzip")
    env = git_env(server, tmp_path / "home")
    source = work_tree(tmp_path / "src", env)
    git(source, env, "push", "-q", remote(server.url, owner_key, "git-gzip"), "main")
    want = f"want {head(source, env)}\n"
    negotiation = f"{len(want) + 4:04x}{want}0000" + "0009done\n"
    answer = requests.post(f"{server.url}/git-gzip.git/git-upload-pack", auth=("anyone", owner_key),
                           data=gzip.compress(negotiation.encode()), timeout=30,
                           headers={"Content-Type": "application/x-git-upload-pack-request",
                                    "Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert answer.content.startswith(b"0008NAK\n") and b"PACK" in answer.content


def test_a_declared_body_over_the_limit_is_refused_before_git_runs(server: LiveServer, owner_key: str) -> None:
    make_app(server, owner_key, "git-declared")
    answer = requests.post(f"{server.url}/git-declared.git/git-receive-pack", auth=("anyone", owner_key),
                           data=b"0" * (MAX_PUSH_BYTES + 2 * 1024 * 1024), timeout=30,
                           headers={"Content-Type": "application/x-git-receive-pack-request"})
    assert answer.status_code == 413
    assert "larger than the 1 MiB Berth accepts" in answer.json()["message"]
