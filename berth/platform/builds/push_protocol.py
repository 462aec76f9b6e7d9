"""How git's pre-receive hook hands a push to the builder and relays the build's output back.

The hook runs inside git with no secrets (only BERTH_APP_ID and the pusher's account id), so it
never touches the database: it connects to the builder's Unix socket (`<data dir>/git/builder.sock`,
in a 0700 directory: only Berth's own user reaches it), sends one JSON header line then the commit's
tarball, and copies what comes back to its stdout, which git relays as `remote:` lines. The
builder's answer is the build's output, then NUL, then the final status on a line of its own.

Imports nothing heavy: every push starts a hook process.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import IO, BinaryIO, Callable

SOCKET_NAME = "builder.sock"
STATUS_MARK = b"\0"
CHUNK = 64 * 1024
NOT_RUNNING = ("Berth's builder is not running, so this push was stored but not built or released. "
               "Ask the operator to start it (`make run` starts it), then push again.")


def socket_path(git_root: Path) -> Path:
    return git_root / SOCKET_NAME


def archive(commit: str, out: BinaryIO) -> None:
    """The commit's tree as a gzip tarball, from the repository git runs the hook in (the pushed
    objects are still in quarantine: visible to this git only). Plain `tar` format with Python's
    gzip, so no `tar.<format>.command` a tenant could configure is ever run."""
    process = subprocess.Popen(["git", "-c", "core.fsmonitor=false", "archive", "--format=tar", commit],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as compressed:
        shutil.copyfileobj(process.stdout, compressed, CHUNK)
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.wait() != 0:
        raise RuntimeError(f"git archive failed: {error.strip()}")


def hand_over(git_root: Path, header: dict[str, str], say: Callable[[str], None],
              write: Callable[[bytes], None]) -> str | None:
    """Sends the push to the builder and relays its output; the build's final status, or None when
    no builder listens (after saying so)."""
    path = socket_path(git_root)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        connection.close()
        say(NOT_RUNNING)
        return None
    with connection, tempfile.TemporaryFile() as tarball:
        archive(header["new"], tarball)
        size = tarball.tell()
        tarball.seek(0)
        connection.sendall(json.dumps({**header, "size": size}).encode() + b"\n")
        shutil.copyfileobj(tarball, connection.makefile("wb"), CHUNK)  # type: ignore[misc]
        return _relay(connection.makefile("rb"), write)


def _relay(answer: IO[bytes], write: Callable[[bytes], None]) -> str:
    tail = b""
    while chunk := answer.read1(CHUNK):  # type: ignore[attr-defined]
        data = tail + chunk
        if STATUS_MARK in data:
            output, _, status = data.partition(STATUS_MARK)
            if output:
                write(output)
            rest = answer.read()
            return (status + rest).decode(errors="replace").strip() or "failed"
        write(data)
        tail = b""
    return "failed"  # the builder went away mid-build


def write_stdout(data: bytes) -> None:
    os.write(1, data)
