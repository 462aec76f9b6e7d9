"""Waking whoever waits, at once, instead of at their next poll.

Workers wait for work: each binds a Unix datagram socket under the data dir, and whoever
queues a job sends one empty datagram to each. A web request waiting for a job's outcome (a
quick provider's answer, say) binds one too, named after the job's subject (an add-on), and
the worker signals it once the outcome is committed. Best effort both ways: a missed signal
costs only the poll interval.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Callable, Iterator


def socket_dir(data_dir: Path) -> Path:
    return data_dir / "run"


def _signal(data_dir: Path, pattern: str) -> None:
    directory = socket_dir(data_dir)
    if not directory.is_dir():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in directory.glob(pattern):
            try:
                sender.sendto(b"", str(path))
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)  # left by a killed process: nobody listens
            except OSError:
                pass  # a full buffer: the listener is awake already, or polls anyway


# What a WaiterSignaller sends: "more output", not "an outcome was committed" (an empty datagram).
PROGRESS_SIGNAL = b"+"


class WaiterSignaller:
    """Tells one subject's waiters of progress again and again (a job's output, line by line) at the
    cost of a datagram each: the waiters' sockets are looked up at most every REFRESH_SECONDS, so a
    follower that starts meanwhile is woken by its own poll until the next lookup."""

    REFRESH_SECONDS = 0.5

    def __init__(self, data_dir: Path, subject_id: str) -> None:
        self.directory = socket_dir(data_dir)
        self.pattern = f"w-{_waiter_key(subject_id)}-*.sock"
        self._targets: list[str] = []
        self._looked_up = float("-inf")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def signal(self) -> None:
        now = time.monotonic()
        if now - self._looked_up >= self.REFRESH_SECONDS:
            self._looked_up = now
            self._targets = [str(path) for path in self.directory.glob(self.pattern)] if self.directory.is_dir() else []
        for target in self._targets:
            try:
                self._socket.sendto(PROGRESS_SIGNAL, target)
            except OSError:
                pass  # gone, or its buffer is full (it is awake already): polling covers both

    def close(self) -> None:
        self._socket.close()


def nudge_workers(data_dir: Path) -> None:
    _signal(data_dir, "worker-*.sock")


def nudge_runner(data_dir: Path) -> None:
    """Tell the runner that an app's formation, release or dyno requests changed (it also polls)."""
    _signal(data_dir, "runner-*.sock")


def nudge_rendezvous(data_dir: Path) -> None:
    """Tell the rendezvous host a detached one-off dyno waits or a one-off was asked to stop (it also
    polls)."""
    _signal(data_dir, "rendezvous-*.sock")


def _waiter_key(subject_id: str) -> str:
    # Short: a Unix socket path has about 100 bytes. A shared prefix only means a spurious wake.
    return subject_id.replace("-", "")[:12]


def signal_waiters(data_dir: Path, subject_id: str) -> None:
    """Tell requests waiting on this subject (a uuid) that an outcome was committed."""
    _signal(data_dir, f"w-{_waiter_key(subject_id)}-*.sock")


class _Listener:
    def __init__(self, data_dir: Path, name: str) -> None:
        directory = socket_dir(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / name
        self.path.unlink(missing_ok=True)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._socket.bind(str(self.path))
        except OSError:
            self._socket.close()
            raise

    def wait(self, timeout: float) -> int:
        """How many signals came within `timeout` seconds (0: none); takes all that queued."""
        return len(self.wait_for_signals(timeout))

    def wait_for_signals(self, timeout: float) -> list[bytes]:
        """The signals (their one-byte payloads) that came within `timeout` seconds; takes all that
        queued."""
        self._socket.settimeout(timeout)
        try:
            received = [self._socket.recv(1)]
        except (TimeoutError, socket.timeout):
            return []
        self._socket.setblocking(False)
        try:
            while True:
                received.append(self._socket.recv(1))
        except BlockingIOError:
            pass
        return received

    def close(self) -> None:
        self._socket.close()
        self.path.unlink(missing_ok=True)


class NudgeListener(_Listener):
    """A worker's: woken when jobs are queued."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, f"worker-{os.getpid()}.sock")


class RunnerListener(_Listener):
    """The runner's: woken by nudge_runner."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, f"runner-{os.getpid()}.sock")


class RendezvousListener(_Listener):
    """The rendezvous host's: woken by nudge_rendezvous."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, f"rendezvous-{os.getpid()}.sock")


class Waiter(_Listener):
    """A request's: woken when a worker has committed an outcome for its subject. Bind it before
    committing the job, so the signal cannot come before anyone listens."""

    def __init__(self, data_dir: Path, subject_id: str) -> None:
        super().__init__(data_dir, f"w-{_waiter_key(subject_id)}-{secrets.token_hex(4)}.sock")

    def __enter__(self) -> "Waiter":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


@contextlib.contextmanager
def woken_by_signal(data_dir: Path, subject_id: str) -> Iterator[Callable[[float], list[bytes]]]:
    """A pause that ends early on a signal for this subject: the signals it got (none: the time ran out)."""
    try:
        waiter = Waiter(data_dir, subject_id)
    except OSError:  # no socket here (a path too long, a read-only dir): polling alone still works
        def sleep(seconds: float) -> list[bytes]:
            time.sleep(seconds)
            return []
        yield sleep
        return
    with waiter:
        yield waiter.wait_for_signals
