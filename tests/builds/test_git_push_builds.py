"""`git push` to a live Berth with its builder running: the push is built before the branch moves,
the build's output comes back as `remote:` lines while it runs, a successful build is released as
"Deploy <sha7>", and a failed build rejects the push, keeping the branch and the release."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.builds.conftest import APPS, BuildPlatform
from tests.git.test_git_http import bare_refs, git, git_env, head, remote

pytestmark = pytest.mark.slow


def repository_of(app: str, path: Path, env: dict[str, str]) -> Path:
    shutil.copytree(APPS / app, path, symlinks=True)
    git(path, env, "init", "-q", "-b", "main")
    git(path, env, "add", "-A")
    git(path, env, "commit", "-q", "-m", f"the {app} sample app")
    return path


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
    git(source, env, "add", "-A")
    git(source, env, "commit", "-q", "-m", "broken")
    pushed = git(source, env, "push", url, "main", ok=False)
    assert pushed.returncode != 0
    assert "remote:  !     Push rejected, failed to compile app." in pushed.stderr
    assert "pre-receive hook declined" in pushed.stderr
    assert good in bare_refs(platform.server, app["id"])  # the branch did not move
    assert platform.releases(name) == releases
    builds = platform.call("GET", f"/apps/{name}/builds").json()
    assert [b["status"] for b in builds] == ["succeeded", "failed"]
