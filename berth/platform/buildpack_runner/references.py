"""Buildpack references: what a user may name, and where its files come from.

A reference is a built-in's name (`python`, or Heroku's `heroku/python`), a git URL (`#ref` picks a
branch, tag or commit), a tarball URL, or a local path. Remote ones are fetched once into a cache keyed
by the reference; nothing fetched is ever run here: the files are bound read-only into the sandbox.
Local paths (and `file://` git URLs) are the operator's: only those under `local_roots` are accepted,
since any other path would show the host's files (another app's repository, Berth's data) to a build.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from berth.outbound import TargetPolicy, TargetRefused

__all__ = ["BUILTIN_DIR", "BUILTIN_ORDER", "REGISTRY_BLOB_URL", "BuildpackError", "Buildpack", "BuildpackFetcher", "builtin_name"]

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "buildpacks"
# Detection order when an app sets none: language packs first, procfile (anything with a Procfile) last.
BUILTIN_ORDER = ("python", "nodejs", "static", "procfile")
TARBALL_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".tbz", ".tar.bz2", ".tar.bz", ".tar.xz")
MAX_TARBALL_BYTES = 100 * 1024 * 1024
FETCH_TIMEOUT = 120  # seconds, for one git clone or download


class BuildpackError(RuntimeError):
    """A buildpack reference that cannot be used; the message is safe to show the app's owner."""


@dataclass(frozen=True)
class Buildpack:
    name: str  # as the user named it (what build output and the API show)
    path: Path  # the directory with bin/; bound read-only into the sandbox


# Where Heroku's buildpack registry says its official buildpacks live: the Heroku CLI turns a
# registry name (`heroku/python`) into this URL before it sets it (see /buildpack-registry).
REGISTRY_BLOB_URL = "https://buildpack-registry.s3.amazonaws.com/buildpacks/heroku/{name}.tgz"
CODON_BLOB_URL = "https://codon-buildpacks.s3.amazonaws.com/buildpacks/heroku/{name}.tgz"


def builtin_name(reference: str) -> str | None:
    """`python`, `heroku/python`, `urn:buildpack:heroku/python` and the registry's URL for
    heroku/python name the built-in python."""
    name = reference.strip()
    for template in (REGISTRY_BLOB_URL, CODON_BLOB_URL):
        prefix, suffix = template.split("{name}")
        if name.startswith(prefix) and name.endswith(suffix):
            name = name[len(prefix):-len(suffix)]
    for prefix in ("urn:buildpack:", "heroku/", "heroku-community/", "berth/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name if name in BUILTIN_ORDER else None


class BuildpackFetcher:
    """Turns references into directories, fetching remote ones once into `cache_dir`."""

    def __init__(self, cache_dir: Path, policy: TargetPolicy, local_roots: Sequence[Path] = ()) -> None:
        self.cache_dir = cache_dir
        self.policy = policy
        self.local_roots = tuple(Path(os.path.realpath(root)) for root in local_roots)

    def builtins(self) -> list[Buildpack]:
        return [Buildpack(name, BUILTIN_DIR / name) for name in BUILTIN_ORDER]

    def resolve(self, reference: str) -> Buildpack:
        reference = reference.strip()
        if not reference:
            raise BuildpackError("A buildpack reference is empty.")
        builtin = builtin_name(reference)
        if builtin:
            return Buildpack(reference, BUILTIN_DIR / builtin)
        scheme = urlsplit(reference).scheme.lower()
        if scheme in ("", "file") and (reference.startswith("/") or scheme == "file"):
            return self._local(reference)
        if scheme not in ("http", "https"):
            raise BuildpackError(
                f"Buildpack {reference!r} is not a built-in ({', '.join(BUILTIN_ORDER)}), nor an http(s) "
                "git or tarball URL.")
        url, _, ref = reference.partition("#")
        if urlsplit(url).path.endswith(TARBALL_SUFFIXES):
            return Buildpack(reference, self._cached(reference, lambda into: self._download(url, into)))
        return Buildpack(reference, self._cached(reference, lambda into: self._clone(url, ref, into)))

    # -- local --------------------------------------------------------------------------------------

    def _local(self, reference: str) -> Buildpack:
        location, _, ref = reference.partition("#")
        path = Path(os.path.realpath(location[len("file://"):] if location.startswith("file://") else location))
        if not any(path == root or root in path.parents for root in self.local_roots):
            raise BuildpackError(
                f"Buildpack {reference!r}: local buildpacks are only taken from the directories the operator "
                "lists in BERTH_LOCAL_BUILDPACK_DIRS; use a built-in name or an https URL.")
        if not path.is_dir():
            raise BuildpackError(f"Buildpack {reference!r}: no such directory.")
        if (path / ".git").exists() or (path / "HEAD").is_file() or ref:
            return Buildpack(reference, self._cached(reference, lambda into: self._clone(str(path), ref, into,
                                                                                         local=True)))
        return Buildpack(reference, self._cached(reference, lambda into: _copy_tree(path, into)))

    # -- the cache ----------------------------------------------------------------------------------

    def _cached(self, reference: str, fetch) -> Path:
        """The fetched tree for `reference`, fetching it on first use (into a scratch directory that
        is renamed into place, so a tree in the cache is complete)."""
        key = hashlib.sha256(reference.encode()).hexdigest()[:32]
        target = self.cache_dir / key
        if target.is_dir():
            return _buildpack_root(target, reference)
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.cache_dir))
        try:
            tree = scratch / "tree"
            fetch(tree)
            if not tree.is_dir():
                raise BuildpackError(f"Buildpack {reference!r}: nothing was fetched.")
            os.chmod(tree, 0o755)
            try:
                os.rename(tree, target)
            except OSError:  # another build fetched it meanwhile
                if not target.is_dir():
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return _buildpack_root(target, reference)

    def _clone(self, url: str, ref: str, into: Path, *, local: bool = False) -> None:
        """git clone, as Berth (git runs nothing from the repository it clones: no hooks come with
        it, submodules are not followed); only the protocols a reference may use are allowed."""
        argv = ["git", "-c", "http.followRedirects=false", "-c", "core.symlinks=true",
                "-c", "protocol.file.allow=" + ("always" if local else "never")]
        if not local:
            argv += ["-c", f"http.curloptResolve={self._pinned(url)}"]
        clone = [*argv, "clone", "--quiet", "--no-recurse-submodules"]
        clone += ["--depth", "1", "--branch", ref] if ref and not _looks_like_sha(ref) else []
        clone += ["--", url, str(into)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_TERMINAL_PROMPT": "0",
               "GIT_ALLOW_PROTOCOL": "file" if local else "http:https", "GIT_CONFIG_NOSYSTEM": "1",
               "HOME": str(into.parent), "GIT_TEMPLATE_DIR": ""}
        _git(clone, env, url)
        if ref and _looks_like_sha(ref):
            _git([*argv, "-C", str(into), "checkout", "--quiet", "--detach", ref, "--"], env, url)
        shutil.rmtree(into / ".git", ignore_errors=True)

    def _pinned(self, url: str) -> str:
        """`host:port:address` for git's resolver: the address the outbound policy checked."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = self.policy.addresses(parts.hostname or "", port, what="buildpack URL", own_host_allowed=False)
        except TargetRefused as exc:
            raise BuildpackError(str(exc)) from exc
        except socket.gaierror as exc:
            raise BuildpackError(f"Buildpack URL {url}: its host does not resolve ({exc.strerror}).") from exc
        address = str(found[0][4][0])
        return f"{parts.hostname}:{port}:{'[' + address + ']' if ':' in address else address}"

    def _download(self, url: str, into: Path) -> None:
        """A tarball through the outbound policy, size-limited, unpacked with tarfile's `data` filter
        (no absolute paths, no links out of the tree, no devices)."""
        archive = into.parent / "buildpack.tar"
        try:
            with self.policy.session() as session, session.get(url, stream=True, timeout=FETCH_TIMEOUT,
                                                              allow_redirects=False) as response:
                if response.status_code != 200:
                    raise BuildpackError(f"Buildpack {url}: the server answered {response.status_code}.")
                size = 0
                with open(archive, "wb") as out:
                    for chunk in response.iter_content(64 * 1024):
                        size += len(chunk)
                        if size > MAX_TARBALL_BYTES:
                            raise BuildpackError(f"Buildpack {url} is larger than {MAX_TARBALL_BYTES >> 20} MB.")
                        out.write(chunk)
        except TargetRefused as exc:
            raise BuildpackError(str(exc)) from exc
        except OSError as exc:  # requests' errors are OSErrors
            raise BuildpackError(f"Buildpack {url} could not be downloaded: {exc.__class__.__name__}.") from exc
        try:
            with tarfile.open(archive) as tar:
                into.mkdir()
                tar.extractall(into, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BuildpackError(f"Buildpack {url} is not a tarball that can be unpacked safely: {exc}") from exc


def _buildpack_root(tree: Path, reference: str) -> Path:
    """The directory holding bin/: the tree itself, or its one top-level directory (GitHub's
    tarballs wrap everything in `<repo>-<ref>/`)."""
    if (tree / "bin").is_dir():
        return tree
    entries = [entry for entry in tree.iterdir()]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() and (entries[0] / "bin").is_dir():
        return entries[0]
    raise BuildpackError(f"Buildpack {reference!r} has no bin/ directory (bin/detect, bin/compile).")


def _copy_tree(source: Path, into: Path) -> None:
    shutil.copytree(source, into, symlinks=True)


def _looks_like_sha(ref: str) -> bool:
    return 7 <= len(ref) <= 40 and all(c in "0123456789abcdef" for c in ref.lower())


def _git(argv: list[str], env: dict[str, str], url: str) -> None:
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=FETCH_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildpackError(f"Buildpack {url}: git took longer than {FETCH_TIMEOUT} s.") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise BuildpackError(f"Buildpack {url} could not be fetched: {detail}")
