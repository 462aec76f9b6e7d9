"""The stack: the Debian bookworm root filesystem that builds, release phase and dynos run on.

`scripts/build-stack.sh` (→ `python -m berth.supervise.stack build`) makes it once per machine with
mmdebstrap from Debian's packages, into a cache outside git (`.cache/stack/`, or BERTH_STACK_DIR),
under a name keyed by a hash of its package list: change the list and every machine builds the new
stack by itself. The build goes into a temporary directory that is renamed into place at the end, so a
stack that exists is complete. Nothing host-specific goes in: the same tree becomes the cluster
backend's container image.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["STACK_NAME", "STACK_ALIASES", "StackError", "packages", "stack_key", "stacks_dir", "stack_root",
           "is_built", "build"]

SUITE = "bookworm"
VARIANT = "minbase"
# Bump when the way the tree is made changes (not its package list, which is hashed anyway).
RECIPE_VERSION = "2"
STACK_NAME = "berth-bookworm"  # what an app reports as its stack
STACK_ALIASES = ("heroku-24",)  # accepted where Heroku's clients name a stack
PACKAGES_FILE = Path(__file__).with_name("stack-packages.txt")
REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = "etc/berth-stack"  # inside the tree: which key and packages it was built from
# Sources apt already uses on this host (a file path is a valid mmdebstrap MIRROR argument).
HOST_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


class StackError(RuntimeError):
    """The stack is missing or could not be built."""


def packages(path: Path = PACKAGES_FILE) -> list[str]:
    """The package list: one name a line, `#` comments and blank lines ignored, sorted, unique."""
    names = {line.split("#", 1)[0].strip() for line in path.read_text().splitlines()}
    return sorted(name for name in names if name)


def stack_key(names: list[str] | None = None) -> str:
    """A short hash of everything that decides the tree's content."""
    recipe = "\n".join([RECIPE_VERSION, SUITE, VARIANT, *(packages() if names is None else sorted(names))])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def stacks_dir() -> Path:
    configured = os.environ.get("BERTH_STACK_DIR")
    return Path(configured) if configured else REPO_ROOT / ".cache" / "stack"


def stack_root(directory: Path | None = None) -> Path:
    """Where the current package list's stack lives (whether built or not)."""
    return (directory or stacks_dir()) / f"{SUITE}-{stack_key()}"


def is_built(root: Path) -> bool:
    return (root / MARKER).is_file() and (root / "app").is_dir()


def require_stack(directory: Path | None = None) -> Path:
    """The built stack's root, or a StackError saying how to build it."""
    root = stack_root(directory)
    if not is_built(root):
        raise StackError(f"the stack is not built at {root}: run `make setup` (scripts/build-stack.sh)")
    return root.resolve()


def build(directory: Path | None = None, out=sys.stderr) -> Path:
    """Build the stack unless it is there; return its root. Concurrent callers wait for one build."""
    directory = directory or stacks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    root = stack_root(directory)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(root):
            return root
        if shutil.which("mmdebstrap") is None:
            raise StackError("mmdebstrap is not installed (scripts/install-system-packages.sh installs it)")
        names = packages()
        print(f"build-stack: building {root.name} ({len(names)} packages; mmdebstrap takes a few minutes once)",
              file=out, flush=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp.", dir=directory))
        try:
            tree = scratch / "rootfs"
            _mmdebstrap(tree, names)
            _finish(tree, names)
            os.rename(tree, root)
        finally:
            _remove_scratch(scratch)
    print(f"build-stack: {root}", file=out, flush=True)
    return root


def _mmdebstrap(tree: Path, names: list[str]) -> None:
    mirror = next((str(p) for p in HOST_SOURCES if p.is_file() and p.stat().st_size), None)
    argv = ["mmdebstrap", "--quiet", f"--variant={VARIANT}", f"--include={','.join(names)}",
            "--aptopt=Acquire::Retries \"3\"", "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
            SUITE, str(tree)]
    if mirror:
        argv.append(mirror)
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise StackError(f"mmdebstrap failed with exit status {done.returncode} (see its output above)")


# Files mmdebstrap copies from the build host, replaced by neutral ones. resolv.conf and hosts stay as
# mount points: the sandbox binds the running host's over them when it gives network.
NEUTRAL_FILES = {
    "etc/resolv.conf": "",
    "etc/hostname": "localhost\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/apt/sources.list.d/debian.sources": (
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"),
}


def _finish(tree: Path, names: list[str]) -> None:
    """The mount point for the app, neutral host files, the marker, and a tree everyone may read
    (mkdtemp made it 0700)."""
    (tree / "app").mkdir(mode=0o755, exist_ok=True)
    (tree / "etc/apt/sources.list").unlink(missing_ok=True)
    for relative, content in NEUTRAL_FILES.items():
        path = tree / relative
        path.unlink(missing_ok=True)
        path.write_text(content)
        os.chmod(path, 0o644)
    (tree / MARKER).write_text(f"key={stack_key(names)}\nsuite={SUITE}\npackages={' '.join(names)}\n")
    os.chmod(tree, 0o755)
    # apt's lists and caches are host-time snapshots nobody inside needs.
    for leftover in ("var/lib/apt/lists", "var/cache/apt"):
        shutil.rmtree(tree / leftover, ignore_errors=True)
        (tree / leftover).mkdir(parents=True, exist_ok=True)


def _remove_scratch(scratch: Path) -> None:
    """Delete a failed build, unless something is still mounted inside it (never delete through a
    mounted /proc or /dev): then say so and leave it for the operator."""
    prefix = str(scratch.resolve()) + "/"
    with open("/proc/self/mountinfo") as mounts:
        inside = [line.split()[4] for line in mounts if (line.split()[4] + "/").startswith(prefix)]
    if inside:
        print(f"build-stack: not removing {scratch}: still mounted inside: {', '.join(inside)}", file=sys.stderr)
        return
    shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m berth.supervise.stack", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "path", "key"])
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build()
        elif args.command == "path":
            print(stack_root())
        else:
            print(stack_key())
    except StackError as exc:
        print(f"build-stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
