"""`git push` to a live Berth with its builder running, over HTTP and over the TLS port (git trusting
Berth's CA through GIT_SSL_CAINFO): the push is built before the branch moves, the build's output
comes back as `remote:` lines while it runs, a successful build is released as "Deploy <sha7>" with
its process types, and a failed build rejects the push, keeping the branch and the release. Each
sample app of tests/fixtures/apps is pushed once; a third-party buildpack comes from a local git
repository, named by `.buildpacks` or by `BUILDPACK_URL`."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.builds.conftest import APPS, BuildPlatform, build_platform
from tests.git.test_git_http import bare_refs, git, git_env, head, remote
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow
STATIC_WEB = ("/app/.heroku/static-server/bin/gunicorn --bind 0.0.0.0:$PORT --chdir /app/.heroku/static-server "
              "--workers 2 berth_static:app")


@pytest.fixture(scope="module")
def platform(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildPlatform]:  # noqa: F811
    """The builds' platform, with its TLS listener as `make run` starts it."""
    with build_platform(tmp_path_factory.mktemp("pushes"), tls=True) as built:
        yield built


def repository_of(app: str, path: Path, env: dict[str, str]) -> Path:
    shutil.copytree(APPS / app, path, symlinks=True)
    git(path, env, "init", "-q", "-b", "main")
    git(path, env, "add", "-A")
    git(path, env, "commit", "-q", "-m", f"the {app} sample app")
    return path


def commit_and_push_rejected(source: Path, env: dict[str, str], url: str, message: str) -> str:
    """Commit the work tree and push it, expecting the build to fail; git's stderr."""
    git(source, env, "add", "-A")
    git(source, env, "commit", "-q", "-m", message)
    pushed = git(source, env, "push", url, "main", ok=False)
    assert pushed.returncode != 0
    assert "pre-receive hook declined" in pushed.stderr
    return pushed.stderr


@pytest.mark.parametrize("sample", ["procfile-only", "flask"])
def test_a_push_is_built_and_released(platform: BuildPlatform, tmp_path: Path, sample: str) -> None:
    name = f"pushed-{sample}"
    platform.make_app(name)
    env = git_env(platform.server, tmp_path / "home")
    source = repository_of(sample, tmp_path / "src", env)
    pushed = git(source, env, "push", remote(platform.server.url, platform.key, name), "main")
    sha = head(source, env)
    assert "remote: -----> Building on the" in pushed.stderr
    assert "remote: -----> Discovering process types" in pushed.stderr
    assert "remote: Verifying deploy... done." in pushed.stderr
    [build] = platform.call("GET", f"/apps/{name}/builds").json()
    assert build["status"] == "succeeded" and build["source_blob"]["version"] == sha
    current = platform.releases(name)[-1]
    assert current["description"] == f"Deploy {sha[:7]}" and current["slug"]["id"] == build["slug"]["id"]
    if sample == "flask":
        assert "remote: -----> Python app detected" in pushed.stderr
        assert "Successfully installed" in pushed.stderr


def test_a_failed_build_rejects_the_push_and_keeps_the_release(platform: BuildPlatform, tmp_path: Path) -> None:
    name = "pushed-then-broken"
    app = platform.make_app(name)
    env = git_env(platform.server, tmp_path / "home")
    source = repository_of("procfile-only", tmp_path / "src", env)
    url = remote(platform.server.url, platform.key, name)
    git(source, env, "push", "-q", url, "main")
    good = head(source, env)
    releases = platform.releases(name)

    (source / "Procfile").unlink()
    (source / "serve.sh").unlink()
    (source / "README").write_text("no buildpack recognises this\n")
    pushed = commit_and_push_rejected(source, env, url, "broken")
    assert "remote:  !     Push rejected, failed to compile app." in pushed
    assert good in bare_refs(platform.server, app["id"])  # the branch did not move
    assert platform.releases(name) == releases
    builds = platform.call("GET", f"/apps/{name}/builds").json()
    assert [b["status"] for b in builds] == ["succeeded", "failed"]


def push(platform: BuildPlatform, source: Path, env: dict[str, str], app: str, *, tls: bool) -> str:
    """`git push <remote> main` over HTTP or the TLS port; git's stderr (the `remote:` lines)."""
    base = platform.server.tls_url if tls else platform.server.url
    assert base is not None
    return git(source, env, "push", remote(base, platform.key, app), "main").stderr


@pytest.mark.parametrize("sample, tls, detected, process_types, built_file", [
    ("node", True, ["Node.js"], {"web": "npm start"}, ("app/dist/message.txt", b"built at compile time\n")),
    ("static-site", False, ["Static HTML"], {"web": STATIC_WEB}, ("app/public/index.html", b"<!doctype html>")),
    ("multi-buildpack", True, ["Node.js", "Python"],
     {"web": "gunicorn app:app --bind 0.0.0.0:$PORT --workers 1"}, ("app/asset.txt", b"asset built with Node v")),
])
def test_each_sample_is_pushed_built_and_released_with_its_process_types(
        platform: BuildPlatform, tmp_path: Path, sample: str, tls: bool, detected: list[str],
        process_types: dict[str, str], built_file: tuple[str, bytes]) -> None:
    name = f"sample-{sample}"
    platform.make_app(name)
    env = git_env(platform.server, tmp_path / "home")
    source = repository_of(sample, tmp_path / "src", env)
    pushed = push(platform, source, env, name, tls=tls)
    sha = head(source, env)

    steps = [line.rstrip() for line in pushed.splitlines() if line.rstrip().endswith(" app detected")]
    assert steps == [f"remote: -----> {language} app detected" for language in detected], pushed
    assert "remote: Verifying deploy... done." in pushed
    [build] = platform.call("GET", f"/apps/{name}/builds").json()
    assert build["status"] == "succeeded" and build["source_blob"]["version"] == sha
    current = platform.releases(name)[-1]
    assert current["description"] == f"Deploy {sha[:7]}" and current["slug"]["id"] == build["slug"]["id"]
    slug = platform.call("GET", f"/apps/{name}/slugs/{build['slug']['id']}").json()
    assert slug["process_types"] == process_types and slug["commit"] == sha
    path, starts = built_file  # what the build made (or the site it serves) is in the slug
    assert platform.slug_files(name, slug["id"])[path].startswith(starts)


def third_party_buildpack(root: Path, env: dict[str, str]) -> tuple[str, str]:
    """A classic buildpack in a local git repository under the operator's buildpack directory, with
    two commits: `v1` (tagged) and the branch's newer head. Returns the repository's file:// URL and
    v1's commit."""
    repository = root / "greeting-buildpack"
    (repository / "bin").mkdir(parents=True)
    git(repository, env, "init", "-q", "-b", "main")

    def commit(greeting: str) -> str:
        scripts = {"detect": "#!/bin/bash\n[ -f \"$1/greeting.txt\" ] && echo Greeting\n",
                   "compile": f"#!/bin/bash\necho '       compiling {greeting}'\n"
                              f"echo '{greeting}' > \"$1/compiled.txt\"\n",
                   "release": "#!/bin/bash\nprintf -- '---\\ndefault_process_types:\\n  web: cat compiled.txt\\n'\n"}
        for script, text in scripts.items():
            (repository / "bin" / script).write_text(text)
            (repository / "bin" / script).chmod(0o755)
        git(repository, env, "add", "-A")
        git(repository, env, "commit", "-q", "-m", greeting)
        return head(repository, env)

    first = commit("hello from v1")
    git(repository, env, "tag", "v1")
    commit("hello from the newest commit")
    return f"file://{repository}", first


def test_a_third_party_buildpack_from_a_local_git_repository_by_buildpacks_file_and_buildpack_url(
        platform: BuildPlatform, tmp_path: Path) -> None:
    env = git_env(platform.server, tmp_path / "home")
    url, v1 = third_party_buildpack(platform.buildpack_root, env)
    for app, how, reference, greeting in [("bp-from-file", ".buildpacks", f"{url}#v1", "hello from v1"),
                                          ("bp-from-config", "BUILDPACK_URL", url, "hello from the newest commit")]:
        platform.make_app(app)
        source = tmp_path / app
        source.mkdir()
        git(source, env, "init", "-q", "-b", "main")
        (source / "greeting.txt").write_text("nothing any built-in buildpack recognises\n")
        if how == ".buildpacks":
            (source / ".buildpacks").write_text(f"# pinned to a tag\n{reference}\n")
        else:
            answer = platform.call("PATCH", f"/apps/{app}/config-vars", {"BUILDPACK_URL": reference})
            assert answer.status_code == 200, answer.text
        git(source, env, "add", "-A")
        git(source, env, "commit", "-q", "-m", "an app for a third-party buildpack")

        pushed = push(platform, source, env, app, tls=False)
        assert f"remote: -----> Using buildpacks from {how}: {reference}" in pushed
        assert "remote: -----> Greeting app detected" in pushed
        assert f"remote:        compiling {greeting}" in pushed
        [build] = platform.call("GET", f"/apps/{app}/builds").json()
        assert build["status"] == "succeeded", pushed
        slug = platform.call("GET", f"/apps/{app}/slugs/{build['slug']['id']}").json()
        assert slug["process_types"] == {"web": "cat compiled.txt"}
        assert platform.slug_files(app, slug["id"])["app/compiled.txt"] == f"{greeting}\n".encode()
    assert v1 != head(Path(url[len("file://"):]), env)  # `#v1` picked the older commit, not the branch
