"""Compile sample apps with the buildpack runner in the real sandbox, then run what was built."""
from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pytest
import requests

from berth.outbound import TargetPolicy
from berth.platform.buildpack_runner import BuildFailed, BuildpackFetcher, BuildpackRunner, BuildResult
from berth.platform.buildpack_runner.node_versions import NodeVersions
from berth.supervise.sandbox import Bind, Sandbox, SandboxSpec, run, sandbox_account
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
PROFILE = 'for f in /app/.profile.d/*.sh; do [ -f "$f" ] && . "$f"; done; '


@dataclass
class Built:
    result: BuildResult | None
    lines: list[str] = field(default_factory=list)
    error: BuildFailed | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


class Builder:
    """Copies a sample app to a fresh source dir and compiles it, with one app's cache."""

    def __init__(self, stack: Path, root: Path, local_roots: Sequence[Path] = ()) -> None:
        self.stack, self.root = stack, root
        self.fetcher = BuildpackFetcher(root / "buildpacks", TargetPolicy(), local_roots=local_roots)
        self.node_versions = NodeVersions(root / "node-versions", stack, host_ca_bundle())
        self.runner = BuildpackRunner(stack, self.fetcher, work_dir=root / "work", timeout=600,
                                      memory_limit=1024 * 1024 * 1024, ca_bundle=host_ca_bundle(),
                                      node_versions=self.node_versions)
        self.cache_dir = root / "cache"
        self.count = 0

    def source(self, app: str) -> Path:
        self.count += 1
        target = self.root / f"source-{self.count}"
        shutil.copytree(APPS / app, target, symlinks=True)
        return target

    def compile(self, app: str | Path, buildpacks: Sequence[str] = (), config: Mapping[str, str] | None = None) -> Built:
        source = self.source(app) if isinstance(app, str) else app
        built = Built(None)
        try:
            built.result = self.runner.compile(source, self.cache_dir, config or {}, buildpacks, built.lines.append)
        except BuildFailed as exc:
            built.error = exc
        return built

    def spec(self, built: BuildResult, command: str, **changes) -> SandboxSpec:
        return SandboxSpec(stack=self.stack, app_dir=built.app_dir, argv=["bash", "-c", PROFILE + command],
                           account=sandbox_account(), app_writable=False, memory_limit=512 * 1024 * 1024,
                           timeout=60, name="dyno", **changes)

    def run(self, built: BuildResult, command: str, env: Mapping[str, str] | None = None,
            binds: Sequence[Bind] = ()) -> tuple[int, str]:
        """Run a process type's command as a dyno would (.profile.d sourced first)."""
        lines: list[str] = []
        result = run(self.spec(built, command, env=dict(env or {}), binds=tuple(binds)), lines.append)
        return result.exit_code, "\n".join(lines)

    def serve(self, built: BuildResult, process_type: str = "web", path: str = "/") -> requests.Response:
        """Start the web process on a free port, wait for its answer, stop it."""
        port = free_port()
        sandbox = Sandbox(self.spec(built, built.process_types[process_type], env={"PORT": str(port)}))
        lines: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                except requests.ConnectionError:
                    if sandbox.process.poll() is not None or time.monotonic() > deadline:
                        lines.extend(sandbox.lines())
                        raise AssertionError("the web process never answered:\n" + "\n".join(lines))
                    time.sleep(0.2)
        finally:
            sandbox.stop(2)


def host_ca_bundle() -> Path | None:
    """The certificate authorities this host trusts (its egress proxy's among them), for pip and npm."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def builder(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Builder:  # noqa: F811
    return Builder(stack_root, tmp_path_factory.mktemp("builds"))
