"""Files in a directory a server's own account owns (a redis-server's, a cluster's): Berth
(perhaps root) writes there only fresh files renamed into place and reads only regular files, so
nothing the server could have planted (a symlink, a FIFO) turns Berth's privileges against
another file. And directories made with an exact mode, whatever the umask."""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from berth.supervise.accounts import ServiceAccount


def write_owned(path: Path, text: str, account: ServiceAccount) -> None:
    """Write `path` as a new 0600 file of `account`, renamed over whatever is there: never
    opening an existing name, so a planted symlink leads nowhere."""
    fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            if account.switches:
                os.fchown(handle.fileno(), account.uid, account.gid)
        os.replace(aside, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)
        raise


def read_regular(path: Path, offset: int = 0, limit: int = -1) -> str:
    """`path`'s text from `offset`, or "" unless it is a regular file (not followed if a symlink,
    never waited on if a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        handle.seek(offset)
        return handle.read(limit).decode(errors="replace")


def has_content(path: Path) -> bool:
    """Whether `path` is a regular file (not a symlink) with something in it."""
    try:
        found = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_size > 0


def make_dirs(path: Path, mode: int) -> None:
    """`path` and its missing parents, each made with exactly `mode` (mkdir(parents=True) applies
    the umask, and sets only the leaf's mode); directories that exist are left as they are."""
    missing = [d for d in (path, *path.parents) if not d.exists()]
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        os.chmod(directory, mode)


def tail(text: str, lines: int) -> str:
    """The last `lines` lines of `text` (a server's log or output), stripped."""
    return "\n".join(text.strip().splitlines()[-lines:])


__all__ = ["has_content", "make_dirs", "read_regular", "tail", "write_owned"]
