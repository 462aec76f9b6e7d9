"""Builds with slugs and sources in S3 (a real versitygw), end to end against a live Berth and its
builder: POST /sources, PUT the tarball to the pre-signed put_url (no credentials), POST
/apps/{app}/builds with its get_url; the builder reads the source from the bucket, stores the slug
there at its sha256 address, and the release is current. The slug read back is verified."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import Iterator

import pytest
import requests

from berth.config import load_settings
from berth.platform.slug_store import slug_store_of
from tests.builds.conftest import APPS, BuildPlatform, build_platform
from tests.builds.test_builds_api import test_heroku3_creates_a_build_and_lists_it  # noqa: F401  (run here on S3)
from tests.builds.test_git_push_builds import repository_of
from tests.git.test_git_http import git, git_env, head, remote
from tests.s3_server import S3Server
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow
SHA = "9b1e2f3a4c5d6e7f8091a2b3c4d5e6f708192a3b"


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def platform(stack_root: Path, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
             s3_server: S3Server, bucket: str) -> Iterator[BuildPlatform]:
    with build_platform(tmp_path_factory.mktemp("s3-builds"), **s3_server.settings(bucket, "berth")) as built:
        yield built


def test_a_source_uploaded_to_s3_builds_and_its_slug_is_stored_there_verified(
        platform: BuildPlatform, s3_server: S3Server, bucket: str) -> None:
    platform.make_app("built-from-s3")
    url = platform.upload(APPS / "procfile-only")  # POST /sources, then PUT to its put_url
    assert url.startswith(f"{s3_server.endpoint}/{bucket}/berth/sources/")
    created = platform.call("POST", "/apps/built-from-s3/builds", {"source_blob": {"url": url, "version": SHA}})
    assert created.status_code == 201, created.text
    build = platform.wait_for("built-from-s3", created.json()["id"])
    output = requests.get(build["output_stream_url"], timeout=60).text
    assert build["status"] == "succeeded", output

    [current, *_] = platform.releases("built-from-s3")[::-1]
    assert current["id"] == build["release"]["id"] and current["current"] is True
    assert current["description"] == f"Deploy {SHA[:7]}"
    slug = platform.call("GET", f"/apps/built-from-s3/slugs/{build['slug']['id']}").json()
    hexdigest = slug["checksum"][len("SHA256:"):]
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="berth/sha256/").get("Contents", [])
    assert f"berth/sha256/{hexdigest[:2]}/{hexdigest}.tgz" in [item["Key"] for item in listed]
    assert not (platform.data_dir / "slugs").exists()  # nothing went to the local store

    store = slug_store_of(load_settings(platform.server.env))
    with store.open(slug["checksum"]) as blob:
        assert hashlib.sha256(blob.read()).hexdigest() == hexdigest
        blob.seek(0)
        with tarfile.open(fileobj=blob, mode="r:gz") as tar:
            assert "app/Procfile" in tar.getnames()
    assert platform.leftovers() == []


def test_a_git_push_is_kept_in_s3_and_built_from_there(platform: BuildPlatform, s3_server: S3Server, bucket: str,
                                                       tmp_path: Path) -> None:
    platform.make_app("pushed-to-s3")
    env = git_env(platform.server, tmp_path / "home")
    source = repository_of("procfile-only", tmp_path / "src", env)
    pushed = git(source, env, "push", remote(platform.server.url, platform.key, "pushed-to-s3"), "main")
    assert "remote: Verifying deploy... done." in pushed.stderr
    [build] = platform.call("GET", "/apps/pushed-to-s3/builds").json()
    assert build["status"] == "succeeded" and build["source_blob"]["version"] == head(source, env)
    assert build["source_blob"]["url"].startswith(f"{s3_server.endpoint}/{bucket}/berth/sources/")
    assert not (platform.data_dir / "sources").exists() or not any((platform.data_dir / "sources").glob("*-*"))
    assert platform.releases("pushed-to-s3")[-1]["slug"]["id"] == build["slug"]["id"]
