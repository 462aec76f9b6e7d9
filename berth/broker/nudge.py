"""Waking workers at once when work is queued, instead of waiting for their next poll.

Each worker binds a Unix datagram socket under the data dir; whoever queues an operation
sends one empty datagram to each. Best effort: a missed nudge only costs the poll interval.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path


def socket_dir(data_dir: Path) -> Path:
    return data_dir / "run"


def nudge_workers(data_dir: Path) -> None:
    directory = socket_dir(data_dir)
    if not directory.is_dir():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in directory.glob("worker-*.sock"):
            try:
                sender.sendto(b"", str(path))
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)  # left by a worker that was killed: nobody listens
            except OSError:
                pass  # a full buffer: the worker polls anyway


class NudgeListener:
    def __init__(self, data_dir: Path) -> None:
        directory = socket_dir(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"worker-{os.getpid()}.sock"
        self.path.unlink(missing_ok=True)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(self.path))

    def wait(self, timeout: float) -> bool:
        """True when nudged within `timeout` seconds; drains any queued nudges."""
        self._socket.settimeout(timeout)
        try:
            self._socket.recv(1)
        except (TimeoutError, socket.timeout):
            return False
        self._socket.setblocking(False)
        try:
            while True:
                self._socket.recv(1)
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        self._socket.close()
        self.path.unlink(missing_ok=True)
