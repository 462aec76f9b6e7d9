"""Unprivileged system accounts for the servers Berth runs (PostgreSQL, redis-server, Kafka).

Berth never runs a server as root. When Berth itself is root (CI, containers) each kind of server
runs as a system account of its own, created on first use with no login shell and no home, so a
compromise of one server (say a tenant who reaches `COPY … TO PROGRAM`) reaches only that account's
files. When Berth is not root, servers run as Berth's own user: the operator chose that user, and
an unprivileged process cannot switch to another.
"""
from __future__ import annotations

import fcntl
import logging
import os
import pwd
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["AccountError", "ServiceAccount", "service_account", "remove_service_account"]

NAME_RE = re.compile(r"^berth-[a-z0-9-]{1,25}$")  # useradd's 32-character limit, with room
log = logging.getLogger(__name__)
_LOCK = Path("/run/lock/berth-accounts.lock")
_NOLOGIN = next((p for p in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(p)), "/bin/false")


class AccountError(RuntimeError):
    """An account could not be created or removed."""


class ServiceAccount:
    """Who a server runs as. `None`-like when Berth is not root: then it runs as Berth."""

    def __init__(self, entry: pwd.struct_passwd | None) -> None:
        self.entry = entry

    @property
    def switches(self) -> bool:
        return self.entry is not None

    @property
    def name(self) -> str:
        return self.entry.pw_name if self.entry else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def uid(self) -> int:
        return self.entry.pw_uid if self.entry else os.geteuid()

    @property
    def gid(self) -> int:
        return self.entry.pw_gid if self.entry else os.getegid()

    def popen_kwargs(self) -> dict[str, Any]:
        """`subprocess.Popen`/`run` arguments that start the child as this account, with no
        supplementary groups (root's would otherwise be inherited)."""
        if self.entry is None:
            return {}
        return {"user": self.entry.pw_uid, "group": self.entry.pw_gid, "extra_groups": []}

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """`base` with HOME/USER/LOGNAME naming this account, so tools never write to root's home."""
        if self.entry is None:
            return dict(base)
        return {**base, "HOME": "/nonexistent", "USER": self.entry.pw_name, "LOGNAME": self.entry.pw_name}

    def own(self, path: Path, mode: int | None = None) -> None:
        """Hand `path` (not followed if it is a symlink) to this account, optionally setting its mode."""
        if self.entry is not None:
            os.chown(path, self.entry.pw_uid, self.entry.pw_gid, follow_symlinks=False)
        if mode is not None and not path.is_symlink():
            os.chmod(path, mode)

    def let_through(self, path: Path) -> None:
        """Give this account search permission on `path` and every directory above it that lacks
        it, so it can reach its own directory inside Berth's private (0700) data dir. Only the
        execute bit is added, never read or write: it reaches entries it knows by name, and can
        neither list nor change these directories."""
        if self.entry is None:
            return
        groups = set(os.getgrouplist(self.entry.pw_name, self.entry.pw_gid))
        for directory in (path, *path.parents):
            found = directory.stat()
            if found.st_uid == self.entry.pw_uid:
                bit = stat.S_IXUSR
            elif found.st_gid in groups:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not found.st_mode & bit:
                log.warning("granting %s search permission on %s", self.entry.pw_name, directory)
                os.chmod(directory, stat.S_IMODE(found.st_mode) | bit)

    def own_tree(self, root: Path) -> None:
        """Hand `root` and everything under it to this account, never following symlinks."""
        if self.entry is None:
            return
        for directory, dirnames, filenames in os.walk(root, followlinks=False):
            os.chown(directory, self.entry.pw_uid, self.entry.pw_gid, follow_symlinks=False)
            for name in (*dirnames, *filenames):
                os.chown(os.path.join(directory, name), self.entry.pw_uid, self.entry.pw_gid,
                         follow_symlinks=False)


def service_account(name: str) -> ServiceAccount:
    """The account named `name` (`berth-…`), created as a locked system account if missing.
    When Berth is not root, the account is Berth's own user."""
    if not NAME_RE.match(name):
        raise ValueError(f"invalid service account name {name!r}: must match {NAME_RE.pattern}")
    if os.geteuid() != 0:
        return ServiceAccount(None)
    try:
        return ServiceAccount(pwd.getpwnam(name))
    except KeyError:
        pass
    with _locked():
        try:  # another process may have made it while we waited
            return ServiceAccount(pwd.getpwnam(name))
        except KeyError:
            pass
        _run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
              "--shell", _NOLOGIN, "--comment", "Berth service account", name])
        return ServiceAccount(pwd.getpwnam(name))


def remove_service_account(name: str) -> None:
    """Delete an account made by `service_account` (and its group); no-op if absent or not root."""
    if not NAME_RE.match(name):
        raise ValueError(f"invalid service account name {name!r}")
    if os.geteuid() != 0:
        return
    with _locked():
        try:
            pwd.getpwnam(name)
        except KeyError:
            return
        _run(["userdel", name])


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise AccountError(f"{argv[0]} could not run: {exc}") from exc
    if done.returncode != 0:
        raise AccountError(f"{' '.join(argv[:1])} failed ({done.returncode}): {done.stderr.strip()}")


class _locked:
    """useradd takes its own lock on /etc/passwd but fails rather than waits; serialise ours."""

    def __enter__(self) -> None:
        _LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(_LOCK, "a")
        fcntl.flock(self._fh, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
