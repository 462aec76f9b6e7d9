"""A live Berth (gunicorn, threaded as `make run` runs it) with its builder process, building real
sample apps in the real sandbox."""
from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest
import requests

from berth.platform.slug_store import LocalSlugStore

from tests.buildpacks.conftest import host_ca_bundle
from tests.live_server import ROOT, LiveServer, live_server, stop
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

APPS = ROOT / "tests" / "fixtures" / "apps"
SLOW_BUILDPACK = "slow"


@dataclass
class BuildPlatform:
    server: LiveServer
    key: str
    buildpack_root: Path
    builder: subprocess.Popen[bytes] | None = None
    builder_logs: list[Path] = field(default_factory=list)

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.server.api(method, path, self.key, json=json, **kwargs)

    def start_builder(self) -> None:
        log = self.server.log.with_name(f"builder-{len(self.builder_logs)}.log")
        self.builder_logs.append(log)
        with log.open("wb") as out:
            self.builder = subprocess.Popen([sys.executable, "-m", "berth.builder"], cwd=ROOT, env=self.server.env,
                                            stdout=out, stderr=subprocess.STDOUT)
        socket = Path(self.server.env["BERTH_DATA_DIR"]) / "git" / "builder.sock"
        deadline = time.monotonic() + 60
        while not socket.exists():
            assert self.builder.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the builder did not start listening"
            time.sleep(0.1)

    def make_app(self, name: str) -> dict[str, Any]:
        made = self.call("POST", "/apps", {"name": name})
        assert made.status_code == 201, made.text
        return made.json()

    def upload(self, directory: Path | None = None, files: dict[str, str] | None = None) -> str:
        """A source of this account's with `directory` (or `files`) as a tarball; its get_url."""
        blob = self.call("POST", "/sources").json()["source_blob"]
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as tar:
            if directory is not None:
                tar.add(directory, arcname="app")
            for name, text in (files or {}).items():
                info = tarfile.TarInfo(f"app/{name}")
                info.size, info.mode = len(text.encode()), 0o755
                tar.addfile(info, io.BytesIO(text.encode()))
        put = requests.put(blob["put_url"], data=data.getvalue(), headers={"Content-Type": ""}, timeout=30)
        assert put.status_code == 200, put.text
        return blob["get_url"]

    def wait_for(self, app: str, build_id: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            build = self.call("GET", f"/apps/{app}/builds/{build_id}").json()
            if build["status"] != "pending":
                return build
            time.sleep(0.5)
        pytest.fail(f"build {build_id} still pending after {timeout} s")

    def releases(self, app: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/apps/{app}/releases").json()

    @property
    def data_dir(self) -> Path:
        return Path(self.server.env["BERTH_DATA_DIR"])

    def slug_files(self, app: str, slug_id: str) -> dict[str, bytes]:
        """The regular files of a stored slug, by their path in it (`app/...`)."""
        checksum = self.call("GET", f"/apps/{app}/slugs/{slug_id}").json()["checksum"]
        with LocalSlugStore(self.data_dir / "slugs").open(checksum) as blob, \
                tarfile.open(fileobj=blob, mode="r:gz") as tar:
            return {member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
                    for member in tar.getmembers() if member.isfile()}

    def leftovers(self) -> list[str]:
        """What a finished build must not leave: its work directory (the fetched tarball, the unpacked
        source, the slug being packed), the runner's scratch directories, and processes under the
        builder: a sandbox (bwrap; nothing in it outlives it: --die-with-parent, and its PID
        namespace dies with its init) or anything else."""
        builds = self.data_dir / "builds"
        found = [str(path) for path in (builds / "work").glob("*")] if (builds / "work").exists() else []
        found += [str(path) for path in builds.glob("build-*")]
        if self.builder is not None:
            for process in _alive(psutil.Process(self.builder.pid).children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    kind = "sandbox" if process.name() == "bwrap" else "process"
                    found.append(f"{kind} {process.pid}: {process.cmdline()}")
        return found


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


class Follower:
    """Reads an output stream in a thread of its own, so that the test never waits on it unbounded."""

    def __init__(self, url: str) -> None:
        self.chunks: list[bytes] = []
        self.response = requests.get(url, stream=True, timeout=600)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for chunk in self.response.iter_content(None):
            self.chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def wait_for(self, marker: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while marker not in b"".join(self.chunks):
            assert time.monotonic() < deadline, f"no {marker!r} in the output: {self.text()}"
            time.sleep(0.1)

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.response.close()
            pytest.fail(f"the output stream was still open after {timeout} s: {self.text()}")
SHA = "3f786850e387550fdab836ed7e6dc881de23001b"


def write_slow_buildpack(root: Path) -> Path:
    """A buildpack that says it started, then sleeps: a build to kill mid-way."""
    buildpack = root / SLOW_BUILDPACK
    (buildpack / "bin").mkdir(parents=True)
    scripts = {"detect": "#!/bin/bash\necho Slow\n",
               "compile": "#!/bin/bash\necho '-----> slow buildpack started'\nsleep 600\n",
               "release": "#!/bin/bash\necho '--- {}'\n"}
    for name, text in scripts.items():
        (buildpack / "bin" / name).write_text(text)
        (buildpack / "bin" / name).chmod(0o755)
    return buildpack


@contextlib.contextmanager
def build_platform(base: Path, *, tls: bool = False, **settings: str) -> Iterator[BuildPlatform]:
    """A live server (with its TLS listener when `tls`) and its builder; `settings` become BERTH_*
    variables of both."""
    buildpacks = base / "local-buildpacks"
    write_slow_buildpack(buildpacks)
    settings = {"LOCAL_BUILDPACK_DIRS": str(buildpacks), **settings}
    bundle = host_ca_bundle()
    if bundle is not None:
        settings["BUILD_CA_BUNDLE"] = str(bundle)
    with live_server(base, workers=1, threads=8, tls=tls, **settings) as server, \
            running_builder(server, server.create_user("builder@example.com"), buildpacks) as built:
        yield built


@contextlib.contextmanager
def running_builder(server: LiveServer, key: str, buildpack_root: Path) -> Iterator[BuildPlatform]:
    """The builder process beside a live server, stopped on the way out."""
    built = BuildPlatform(server, key, buildpack_root)
    built.start_builder()
    try:
        yield built
    finally:
        if built.builder is not None:
            stop(built.builder)


@pytest.fixture(scope="module")
def platform(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildPlatform]:  # noqa: F811
    with build_platform(tmp_path_factory.mktemp("builds")) as built:
        yield built
