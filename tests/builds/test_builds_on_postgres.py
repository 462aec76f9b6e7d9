"""Builds with the control plane on PostgreSQL (the embedded default is SQLite): a live Berth and
its builder on a real PostgreSQL server build an uploaded source and a git push, roll back, report
the slug and repository sizes, and remove every file of the app when it is destroyed."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.builds.conftest import BuildPlatform, build_platform
from tests.builds.test_git_push_builds import repository_of
from tests.git.test_git_http import git, git_env, head, remote
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(stack_root: Path, postgres_server, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
             ) -> Iterator[BuildPlatform]:
    url = postgres_server.create_database("berth_builds").replace("postgresql://", "postgresql+psycopg://", 1)
    with build_platform(tmp_path_factory.mktemp("builds-on-postgres"), DATABASE_URL=url) as built:
        yield built


def test_a_source_build_a_push_and_a_rollback_on_postgresql(platform: BuildPlatform, tmp_path: Path) -> None:
    name = "on-postgres"
    app = platform.make_app(name)
    data_dir = Path(platform.server.env["BERTH_DATA_DIR"])
    assert platform.call("GET", "/openapi.json").status_code == 200
    assert platform.server.env["BERTH_DATABASE_URL"].startswith("postgresql+psycopg://")

    url = platform.upload(files={"Procfile": "web: ./serve.sh\n", "serve.sh": "#!/bin/sh\necho uploaded\n"})
    started = platform.call("POST", f"/apps/{name}/builds", {"source_blob": {"url": url, "version": "uploaded-1"}})
    assert started.status_code == 201, started.text
    uploaded = platform.wait_for(name, started.json()["id"])
    assert uploaded["status"] == "succeeded", platform.call("GET", f"/apps/{name}/builds").text
    assert uploaded["stack"] == "berth-bookworm"

    env = git_env(platform.server, tmp_path / "home")
    source = repository_of("procfile-only", tmp_path / "src", env)
    pushed = git(source, env, "push", remote(platform.server.url, platform.key, name), "main")
    assert "remote: Verifying deploy... done." in pushed.stderr
    sha = head(source, env)
    releases = platform.releases(name)
    assert [r["description"] for r in releases] == ["Initial release", "Deploy uploaded-1", f"Deploy {sha[:7]}"]
    assert releases[-1]["current"] and releases[-1]["status"] == "succeeded"
    builds = platform.call("GET", f"/apps/{name}/builds").json()
    assert [b["status"] for b in builds] == ["succeeded", "succeeded"]

    rolled = platform.call("POST", f"/apps/{name}/releases", {"release": "v2"})
    assert rolled.status_code == 201, rolled.text
    assert rolled.json()["description"] == "Rollback to v2" and rolled.json()["slug"] == releases[1]["slug"]
    shown = platform.call("GET", f"/apps/{name}").json()
    first_slug = platform.call("GET", f"/apps/{name}/slugs/{releases[1]['slug']['id']}").json()
    assert shown["slug_size"] == first_slug["size"] > 0 and shown["repo_size"] > 0
    assert shown["buildpack_provided_description"] == first_slug["buildpack_provided_description"]

    leftovers = [data_dir / "git" / "repos" / f"{app['id']}.git", data_dir / "build-cache" / app["id"],
                 *(data_dir / "builds" / "output" / f"{b['id']}.log" for b in builds)]
    assert all(path.exists() for path in leftovers)
    checksums = [platform.call("GET", f"/apps/{name}/slugs/{b['slug']['id']}").json()["checksum"] for b in builds]
    assert platform.call("DELETE", f"/apps/{name}").status_code == 200
    assert [path for path in leftovers if path.exists()] == []
    blobs = data_dir / "slugs" / "sha256"
    assert [c for c in checksums if (blobs / c[7:9] / f"{c[7:]}.tgz").exists()] == []
