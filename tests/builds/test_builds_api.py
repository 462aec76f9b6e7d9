"""POST /apps/{app}/builds against a live Berth whose builder builds in the real sandbox: a build
streams its output, stores a slug and cuts "Deploy <version>"; a failed one changes nothing live;
what could never be built is refused at once; a killed builder's build is failed on its restart."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.builds.conftest import APPS, SLOW_BUILDPACK, BuildPlatform, Follower

pytestmark = pytest.mark.slow
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"


def test_a_build_streams_its_output_then_releases_the_slug(platform: BuildPlatform) -> None:
    platform.make_app("built-from-source")
    url = platform.upload(APPS / "procfile-only")
    created = platform.call("POST", "/apps/built-from-source/builds",
                            {"source_blob": {"url": url, "version": SHA}})
    assert created.status_code == 201, created.text
    build = created.json()
    assert build["status"] == "pending" and build["source_blob"]["version"] == SHA

    # Valid at once, no key needed, closed only once the final status is stored.
    with requests.get(build["output_stream_url"], stream=True, timeout=600) as stream:
        assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/plain")
        output = b"".join(stream.iter_content(None)).decode()
    finished = platform.call("GET", f"/apps/built-from-source/builds/{build['id']}").json()
    assert finished["status"] == "succeeded", output
    assert "-----> Building on the" in output and "Procfile declares types -> web, hello" in output
    assert "Released v" in output

    [release] = [r for r in platform.releases("built-from-source") if r["id"] == finished["release"]["id"]]
    assert release["description"] == f"Deploy {SHA[:7]}"
    assert release["slug"]["id"] == finished["slug"]["id"]
    slug = platform.call("GET", f"/apps/built-from-source/slugs/{finished['slug']['id']}").json()
    assert slug["process_types"]["web"] == "./serve.sh" and slug["commit"] == SHA
    assert slug["size"] > 0 and slug["checksum"].startswith("SHA256:")
    listed = platform.call("GET", "/apps/built-from-source/builds").json()
    assert [entry["id"] for entry in listed] == [build["id"]]


def test_a_failed_build_changes_nothing_live(platform: BuildPlatform) -> None:
    platform.make_app("build-fails")
    before = platform.releases("build-fails")
    url = platform.upload(files={"README": "nothing any buildpack recognises\n"})
    build = platform.call("POST", "/apps/build-fails/builds", {"source_blob": {"url": url}}).json()
    with requests.get(build["output_stream_url"], stream=True, timeout=600) as stream:
        output = stream.text
    finished = platform.call("GET", f"/apps/build-fails/builds/{build['id']}").json()
    assert finished["status"] == "failed"
    assert finished["release"] is None and finished["slug"] is None
    assert "nothing was released" in output
    assert platform.releases("build-fails") == before


@pytest.mark.parametrize("blob, says", [
    ({"url": "http://example.com/source.tgz"}, "BERTH_SOURCE_HOSTS"),
    ({"url": "ftp://example.com/source.tgz"}, "url"),
    ({"url": "http://127.0.0.1:1/source-blobs/forged"}, "invalid or has expired"),
    ({"url": "OWN", "checksum": "SHA256:abc"}, "checksum"),
    ({}, "url"),
])
def test_sources_berth_may_not_build_are_refused_422(platform: BuildPlatform, blob: dict[str, str],
                                                      says: str) -> None:
    name = "build-refused"
    if platform.call("GET", f"/apps/{name}").status_code == 404:
        platform.make_app(name)
    if blob.get("url") == "OWN":
        blob = {**blob, "url": platform.upload(files={"Procfile": "web: true\n"})}
    if "forged" in blob.get("url", ""):
        blob = {"url": platform.server.url + "/source-blobs/forged"}
    answer = platform.call("POST", f"/apps/{name}/builds", {"source_blob": blob})
    assert answer.status_code == 422, answer.text
    assert answer.json()["id"] == "invalid_params" and says in answer.json()["message"]
    assert platform.call("GET", f"/apps/{name}/builds").json() == []


def test_a_buildpack_berth_cannot_use_is_refused_422(platform: BuildPlatform) -> None:
    platform.make_app("build-bad-buildpack")
    url = platform.upload(files={"Procfile": "web: true\n"})
    answer = platform.call("POST", "/apps/build-bad-buildpack/builds",
                           {"source_blob": {"url": url}, "buildpacks": [{"url": "gopher://x/y"}]})
    assert answer.status_code == 422, answer.text


def test_another_accounts_build_is_not_found(platform: BuildPlatform) -> None:
    platform.make_app("build-private")
    other = platform.server.create_user("someone-else@example.com")
    assert platform.server.api("GET", "/apps/build-private/builds", other).status_code in (403, 404)
    answer = platform.call("GET", "/apps/build-private/builds/00000000-0000-4000-8000-000000000000")
    assert answer.status_code == 404 and answer.json()["id"] == "not_found"


def test_deleting_the_build_cache_empties_it(platform: BuildPlatform) -> None:
    app = platform.make_app("build-cache-purged")
    cache = Path(platform.server.env["BERTH_DATA_DIR"]) / "build-cache" / app["id"]
    (cache / "pip").mkdir(parents=True)
    (cache / "pip" / "wheel").write_text("cached")
    answer = platform.call("DELETE", "/apps/build-cache-purged/build-cache")
    assert answer.status_code == 200, answer.text
    assert not cache.exists()


def test_a_builder_killed_mid_build_fails_the_build_on_restart(platform: BuildPlatform) -> None:
    platform.make_app("build-killed")
    url = platform.upload(files={"Procfile": "web: true\n"})
    slow = str(platform.buildpack_root / SLOW_BUILDPACK)
    build = platform.call("POST", "/apps/build-killed/builds",
                          {"source_blob": {"url": url}, "buildpacks": [{"url": slow}]}).json()
    before = platform.releases("build-killed")
    follower = Follower(build["output_stream_url"])
    follower.wait_for(b"slow buildpack started", timeout=120)
    assert platform.builder is not None
    os.kill(platform.builder.pid, signal.SIGKILL)
    platform.builder.wait()
    time.sleep(1)
    assert platform.call("GET", f"/apps/build-killed/builds/{build['id']}").json()["status"] == "pending"

    platform.start_builder()
    follower.join(timeout=60)  # the stream ends once the restarted builder failed the build
    rest = follower.text()
    finished = platform.wait_for("build-killed", build["id"], timeout=60)
    assert finished["status"] == "failed" and "builder stopped" in finished["failure_message"]
    assert "builder stopped while this build ran" in rest
    assert platform.releases("build-killed") == before


def test_heroku3_creates_a_build_and_lists_it(platform: BuildPlatform) -> None:
    """heroku3's `app.create_build` sends `checksum` and `version` as null and `buildpacks: []`."""
    import heroku3
    saved = heroku3.api.HEROKU_URL
    heroku3.api.HEROKU_URL = platform.server.url
    try:
        client = heroku3.from_key(platform.key)
    finally:
        heroku3.api.HEROKU_URL = saved
    platform.make_app("h3-built")
    url = platform.upload(APPS / "procfile-only")
    build = client.app("h3-built").create_build(url)
    assert build.status == "pending"
    deadline = time.monotonic() + 600
    while platform.call("GET", f"/apps/h3-built/builds/{build.id}").json()["status"] == "pending" \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    finished = platform.call("GET", f"/apps/h3-built/builds/{build.id}").json()
    assert finished["status"] == "succeeded", finished
    assert [entry["id"] for entry in platform.call("GET", "/apps/h3-built/builds").json()] == [build.id]
