"""Bad input, end to end against a live Berth and its builder: each build fails with a clear message
in its output AND in the API's build (`status` failed, `failure_message`), the app's previous release
stays current, and nothing is left behind: no work directory (fetched tarball, unpacked source, slug
being packed), no scratch directory, no process under the builder, no sandbox.

The extractor's refusals are unit-tested in tests/sources/test_archive.py; here each is proved to
fail a whole build cleanly. Sources Berth may not fetch are refused at once (422, no build): see
tests/builds/test_builds_api.py::test_sources_berth_may_not_build_are_refused_422."""
from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.builds.conftest import APPS, SLOW_BUILDPACK, BuildPlatform, Follower, build_platform
from tests.builds.test_git_push_builds import commit_and_push_rejected, repository_of
from tests.git.test_git_http import bare_refs, git, git_env, head, remote
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow
SLUG_MAX_BYTES = 1024 * 1024  # small, so that a small source makes a slug over the hard limit
BUILD_TIMEOUT_SECONDS = 20  # every good build here takes a few seconds; the slow buildpack is stopped
APP = "bad-input"
ESCAPED = "escaped-by-a-bad-input-test"  # what the traversal tries to write, as far up as it can


@pytest.fixture(scope="module")
def platform(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildPlatform]:  # noqa: F811
    with build_platform(tmp_path_factory.mktemp("bad-input"), SLUG_MAX_BYTES=str(SLUG_MAX_BYTES),
                        BUILD_TIMEOUT_SECONDS=str(BUILD_TIMEOUT_SECONDS)) as built:
        yield built


@pytest.fixture(scope="module")
def live_release(platform: BuildPlatform) -> dict:
    """The app's current release, from a good build, that every bad build must leave current."""
    platform.make_app(APP)
    build = platform.call("POST", f"/apps/{APP}/builds",
                          {"source_blob": {"url": platform.upload(APPS / "procfile-only")}}).json()
    assert platform.wait_for(APP, build["id"])["status"] == "succeeded"
    return platform.releases(APP)[-1]


def tarball(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return data.getvalue()


def member(name: str, content: bytes = b"", *, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(content), mode
    return info, content


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def gzip_bomb(unpacked_bytes: int) -> bytes:
    """A tarball of one file of zeros: about a thousand times smaller than what it unpacks to."""
    data = io.BytesIO()
    with gzip.GzipFile(fileobj=data, mode="wb", compresslevel=9) as compressed:
        with tarfile.open(fileobj=compressed, mode="w") as tar:
            info = tarfile.TarInfo("app/zeros")
            info.size = unpacked_bytes
            tar.addfile(info, _Zeros(unpacked_bytes))
    return data.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)


PROCFILE = member("app/Procfile", b"web: ./serve.sh\n")
FLASK = [member(f"app/{path.name}", path.read_bytes()) for path in sorted((APPS / "flask").iterdir())
         if path.is_file() and path.name != ".python-version"]
SOURCES = {
    "no detectable app": (lambda: tarball(member("app/README", b"nothing any buildpack recognises\n")),
                          "No default language could be detected for this app."),
    "a Procfile syntax error": (lambda: tarball(member("app/Procfile", b"web: ./serve.sh\nworker ./work.sh\n"),
                                                member("app/serve.sh", b"#!/bin/sh\n", mode=0o755)),
                                "Procfile: line 2 is not `<process type>: <command>`: 'worker ./work.sh'"),
    "a Python version not installed": (lambda: tarball(*FLASK, member("app/.python-version", b"3.7\n")),
                                       "Python 3.7 (.python-version) is not installed on this stack. Installed:"),
    "a slug over the hard limit": (lambda: tarball(PROCFILE, member("app/serve.sh", b"#!/bin/sh\n", mode=0o755),
                                                   member("app/data.bin", os.urandom(2 * SLUG_MAX_BYTES))),
                                   "Compiled slug size: 2.0M is too large (max is 1M)."),
    "a malformed tarball": (lambda: b"\x1f\x8b\x08\x00" + os.urandom(4096),
                            "The source could not be used:"),
    "path traversal": (lambda: tarball(PROCFILE, member("app/" + "../" * 12 + ESCAPED, b"out\n")),
                       "The source could not be used:"),
    "a symlink out of the tree": (lambda: tarball(PROCFILE, symlink("app/passwd", "/etc/passwd")),
                                  "The source could not be used:"),
    "a zip bomb": (lambda: gzip_bomb(256 * 1024 * 1024), "The source could not be used:"),
}


def upload_bytes(platform: BuildPlatform, content: bytes) -> str:
    blob = platform.call("POST", "/sources").json()["source_blob"]
    put = requests.put(blob["put_url"], data=content, headers={"Content-Type": ""}, timeout=60)
    assert put.status_code == 200, put.text
    return blob["get_url"]


def assert_nothing_left(platform: BuildPlatform) -> None:
    """The builder's last steps (removing the work dir) may end just after the status is stored."""
    deadline = time.monotonic() + 10
    while (left := platform.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []


@pytest.mark.parametrize("case", list(SOURCES))
def test_a_bad_source_fails_its_build_clearly_and_changes_nothing(platform: BuildPlatform, live_release: dict,
                                                                   case: str) -> None:
    make, says = SOURCES[case]
    url = upload_bytes(platform, make())
    created = platform.call("POST", f"/apps/{APP}/builds", {"source_blob": {"url": url}})
    assert created.status_code == 201, created.text
    with requests.get(created.json()["output_stream_url"], stream=True, timeout=600) as stream:
        output = stream.text
    build = platform.wait_for(APP, created.json()["id"])
    assert build["status"] == "failed" and build["release"] is None and build["slug"] is None
    assert says in output, output
    assert says in build["failure_message"], build["failure_message"]
    assert "nothing was released; the app keeps running its current release" in output
    assert platform.releases(APP)[-1] == live_release
    assert_nothing_left(platform)
    assert not [path for path in platform.data_dir.parents if (path / ESCAPED).exists()]


def test_a_broken_requirements_file_rejects_the_push_showing_pips_message(platform: BuildPlatform,
                                                                           tmp_path: Path) -> None:
    name = "pushed-broken-requirements"
    app = platform.make_app(name)
    env = git_env(platform.server, tmp_path / "home")
    source = repository_of("procfile-only", tmp_path / "src", env)  # a good release first
    url = remote(platform.server.url, platform.key, name)
    git(source, env, "push", "-q", url, "main")
    good, before = head(source, env), platform.releases(name)

    shutil.copytree(APPS / "broken-requirements", source, dirs_exist_ok=True)
    pushed = commit_and_push_rejected(source, env, url, "broken requirements")
    assert "ERROR: Invalid requirement: 'this is not a requirement!'" in pushed
    assert "remote:  !     pip could not install requirements.txt" in pushed
    assert "remote:  !     Push rejected, failed to compile Python app." in pushed
    assert good in bare_refs(platform.server, app["id"])
    assert platform.releases(name) == before
    build = platform.call("GET", f"/apps/{name}/builds").json()[-1]
    assert build["status"] == "failed"
    assert "pip could not install requirements.txt" in build["failure_message"]
    assert "Invalid requirement: 'this is not a requirement!'" in build["failure_message"]
    assert_nothing_left(platform)


def test_a_build_stopped_mid_way_leaves_nothing_and_the_check_sees_a_running_one(platform: BuildPlatform,
                                                                                   live_release: dict) -> None:
    """The leftover check is not vacuous: while a build runs it finds the work directory, the
    sandbox and the builder's child; once the time limit stopped the build, none of them."""
    slow = str(platform.buildpack_root / SLOW_BUILDPACK)
    build = platform.call("POST", f"/apps/{APP}/builds", {
        "source_blob": {"url": upload_bytes(platform, tarball(PROCFILE))}, "buildpacks": [{"url": slow}]}).json()
    follower = Follower(build["output_stream_url"])
    follower.wait_for(b"slow buildpack started", timeout=60)
    running = platform.leftovers()
    assert any(f"work/{build['id']}" in entry for entry in running), running
    assert any(entry.startswith("sandbox ") for entry in running), running
    assert any(entry.startswith("process ") for entry in running), running

    follower.join(timeout=BUILD_TIMEOUT_SECONDS + 60)
    finished = platform.wait_for(APP, build["id"], timeout=10)
    assert finished["status"] == "failed" and "Build timed out" in finished["failure_message"]
    assert platform.releases(APP)[-1] == live_release
    assert_nothing_left(platform)
