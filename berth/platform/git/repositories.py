"""Each app's bare repository, `$BERTH_DATA_DIR/git/repos/<app id>.git` (by id, so a rename keeps
it), made on first use and removed when the app is destroyed.

A tenant can put objects and refs into a repository, never files: still, nothing a repository's own
config could say is trusted. Every git process Berth starts gets `fixed_config()` on its command line
(which beats the repository's config) and no system or global config at all, so hooks, pack hooks and
receive settings are always Berth's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from berth.accounts import UUID_PATTERN

GIT_DIR_NAME = "git"
HOOK_NAMES = ("pre-receive", "post-receive")


def git_root(data_dir: Path) -> Path:
    return data_dir / GIT_DIR_NAME


def repos_root(data_dir: Path) -> Path:
    return git_root(data_dir) / "repos"


def hooks_dir(data_dir: Path) -> Path:
    return git_root(data_dir) / "hooks"


def repository_name(app_id: str) -> str:
    """`<uuid>.git`; anything but a UUID is refused, so no path can be smuggled in."""
    if not UUID_PATTERN.match(app_id):
        raise ValueError(f"not an app id: {app_id!r}")
    return f"{app_id.lower()}.git"


def repository_path(data_dir: Path, app_id: str) -> Path:
    return repos_root(data_dir) / repository_name(app_id)


def fixed_config(data_dir: Path, max_push_bytes: int) -> list[str]:
    """`-c key=value` arguments for every git process on a tenant's repository."""
    settings = {
        "core.hooksPath": str(hooks_dir(data_dir)),  # Berth's hooks, never the repository's
        "core.fsmonitor": "false",
        "http.getanyfile": "false",                  # smart protocol only: no files served as they are
        "http.uploadpack": "true",
        "http.receivepack": "true",
        "receive.maxInputSize": str(max_push_bytes),
        "receive.fsckObjects": "true",               # refuses malformed trees (`..`, `.git` entries)
        "receive.denyDeletes": "true",
        "receive.denyNonFastForwards": "false",      # `git push --force` works, as on Heroku
        "receive.advertisePushOptions": "false",
        "receive.shallowUpdate": "false",
        "receive.certNonceSeed": "",
        "receive.procReceiveRefs": "",
        "uploadpack.allowAnySHA1InWant": "false",
        "uploadpack.allowReachableSHA1InWant": "false",
        "uploadpack.allowTipSHA1InWant": "false",
        "transfer.hideRefs": "",
    }
    return [argument for key, value in settings.items() for argument in ("-c", f"{key}={value}")]


def git_environment(data_dir: Path) -> dict[str, str]:
    """The environment of every git process on a tenant's repository: no config but the command
    line's, no prompt, a HOME with nothing in it."""
    home = git_root(data_dir) / "home"
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
            "GIT_ATTR_NOSYSTEM": "1"}


def ensure_repository(data_dir: Path, app_id: str) -> Path:
    """The app's repository, made (bare, empty, HEAD at main) if it does not exist yet. It is made
    whole beside its place and renamed into it, so concurrent first pushes agree on one."""
    path = repository_path(data_dir, app_id)
    if path.is_dir():
        return path
    install_hooks(data_dir)
    repos_root(data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(dir=repos_root(data_dir), prefix=".new-"))
    try:
        subprocess.run(["git", "init", "--bare", "--quiet", "--template=", "--initial-branch=main", str(aside)],
                       env=git_environment(data_dir), check=True, capture_output=True, timeout=30)
        try:
            os.rename(aside, path)
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return path


def install_hooks(data_dir: Path) -> None:
    """Writes Berth's hook programs (the current interpreter running berth.platform.git.hooks),
    replacing any older ones atomically."""
    directory = hooks_dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    package_parent = str(Path(__file__).resolve().parents[3])
    for name in HOOK_NAMES:
        # -I: no PYTHON* variables, no user site, not the current directory on sys.path.
        text = (f"#!{sys.executable} -I\n"
                "import sys\n"
                f"sys.path.insert(0, {package_parent!r})\n"
                "from berth.platform.git.hooks import main\n"
                f"sys.exit(main({name!r}, {str(git_root(data_dir))!r}))\n")
        target = directory / name
        if target.exists() and target.read_text() == text:
            continue
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}-")
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(temporary, 0o700)
        os.replace(temporary, target)


def remove_repository(data_dir: Path, app_id: str) -> None:
    path = repository_path(data_dir, app_id)
    if not path.exists():
        return
    aside = path.with_name(f".gone-{path.name}")
    os.rename(path, aside)  # gone from its place at once, even if deleting the files takes a while
    shutil.rmtree(aside, ignore_errors=True)
