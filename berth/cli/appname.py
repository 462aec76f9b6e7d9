"""Which app a command acts on: -a/--app, else a `.berth` file, else the `berth` git remote."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

APP_FILE = ".berth"
GIT_REMOTE = "berth"
_REMOTE_APP = re.compile(r"/([^/]+)\.git/?$")

app_option: Callable[[Any], Any] = click.option(
    "-a", "--app", "app", metavar="APP", help="App to act on (default: .berth file or git remote 'berth').")


def from_file(start: Path) -> str | None:
    for directory in (start, *start.parents):
        try:
            lines = (directory / APP_FILE).read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        name = next((line.strip() for line in lines if line.strip()), None)
        if name:
            return name
    return None


def from_git_remote(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "remote", "get-url", GIT_REMOTE], cwd=cwd,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None  # no git, or not runnable: just means "no remote"
    m = _REMOTE_APP.search(out.stdout.strip()) if out.returncode == 0 else None
    return m.group(1) if m else None


def resolve(app: str | None) -> str:
    if app:
        return app
    cwd = Path.cwd()
    found = from_file(cwd) or from_git_remote(cwd)
    if not found:
        raise click.UsageError(
            "No app specified. Use -a APP, or run inside a directory with a .berth file "
            "or a git remote named 'berth'.")
    return found
