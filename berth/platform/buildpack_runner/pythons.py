"""CPythons the operator installs beside the stack's: BERTH_PYTHONS_DIR (default none) holds one
directory per interpreter, `<name>/bin/python3.X` (a python-build-standalone tree, or a CPython
built for Debian 12), bound read-only at /opt in every build and every dyno.

A virtualenv made in a build links to its interpreter's path (`/opt/<name>/bin/python3.X`), and the
slug carries only the virtualenv: a dyno therefore needs the same bind at the same path, which
`language_binds` gives the launcher of dynos and release phase as it gives the build. An operator
removes an interpreter only when no release still uses it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from berth.supervise.sandbox import Bind

__all__ = ["PYTHONS_TARGET", "pythons_dir", "language_binds"]

PYTHONS_TARGET = "/opt"  # empty in the stack, so a mount point exists


def pythons_dir(env: Mapping[str, str]) -> Path | None:
    configured = env.get("BERTH_PYTHONS_DIR", "").strip()
    if not configured:
        return None
    directory = Path(configured)
    if not directory.is_absolute() or not directory.is_dir():
        raise ValueError(f"BERTH_PYTHONS_DIR={configured} is not an absolute path to a directory: "
                         "point it at the directory holding the CPythons, or unset it")
    if directory.stat().st_mode & 0o005 != 0o005:  # builds and dynos run as an unprivileged account
        raise ValueError(f"BERTH_PYTHONS_DIR={configured} is not readable by everyone: chmod o+rx it "
                         "(and its interpreters), or builds cannot see them")
    return directory


def language_binds(pythons: Path | None) -> list[Bind]:
    """The read-only binds builds, release phase and dynos all get, so code built against them runs."""
    return [Bind(pythons, PYTHONS_TARGET)] if pythons is not None else []
