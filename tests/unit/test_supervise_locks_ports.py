"""berth.supervise.locks and .ports with real processes and sockets: one server's lock excludes
other processes and threads but not its own holder; a port counts as free only when nothing
listens on it."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

from berth.supervise import locks, ports

TRY_LOCK = ("import fcntl, sys\n"
            "with open(sys.argv[1], 'a') as handle:\n"
            "    try:\n"
            "        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "    except BlockingIOError:\n"
            "        sys.exit(1)\n")


def another_process_gets(path: Path) -> bool:
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)], timeout=30).returncode == 0


def test_a_lock_excludes_other_processes_until_released(tmp_path: Path) -> None:
    path = tmp_path / "made" / "on demand" / "lock"
    with locks.file_lock(path):
        assert path.is_file()
        assert not another_process_gets(path)
    assert another_process_gets(path)


def test_a_lock_is_reentrant_in_its_thread_and_exclusive_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    got_it = threading.Event()

    def other_thread() -> None:
        with locks.file_lock(path):
            got_it.set()

    nested = threading.Event()
    refused: list[BaseException] = []

    def impatient_thread() -> None:
        try:
            with locks.file_lock(path, wait=False):
                pass
        except BlockingIOError as exc:
            refused.append(exc)

    def holder() -> None:
        with locks.file_lock(path):
            with locks.file_lock(path), locks.file_lock(path, wait=False):  # a start inside a resize
                nested.set()
            impatient = threading.Thread(target=impatient_thread)
            impatient.start()
            impatient.join(10)
            other = threading.Thread(target=other_thread)
            other.start()
            assert not got_it.wait(0.3)  # still held after the inner release
            assert not another_process_gets(path)
        other.join(10)

    thread = threading.Thread(target=holder)
    thread.start()
    thread.join(20)
    assert not thread.is_alive() and nested.is_set() and got_it.is_set() and len(refused) == 1


def test_a_port_someone_listens_on_is_not_free() -> None:
    with socket.create_server((ports.LOOPBACK, 0)) as squatter:
        held = squatter.getsockname()[1]
        assert not ports.can_bind(ports.LOOPBACK, held)
        assert not ports.can_bind(ports.LOOPBACK, held, reuse_address=False)
        assert ports.listening(ports.LOOPBACK, held)
        candidates = range(held, held + 40)
        free = list(ports.free_ports(ports.LOOPBACK, candidates, taken={held + 1}))
        assert free and held not in free and held + 1 not in free and free == sorted(free)
        assert all(ports.can_bind(ports.LOOPBACK, port) for port in free[:3])
    assert ports.can_bind(ports.LOOPBACK, held) and not ports.listening(ports.LOOPBACK, held)


def test_free_ports_are_checked_only_when_asked_for() -> None:
    with socket.create_server((ports.LOOPBACK, 0)) as squatter:
        held = squatter.getsockname()[1]
        found = ports.free_ports(ports.LOOPBACK, range(held, held + 1))
        squatter.close()  # gone before the range is looked at: the port is free by then
        assert list(found) == [held]


def test_a_free_loopback_port_can_be_bound() -> None:
    port = ports.free_loopback_port()
    with socket.create_server((ports.LOOPBACK, port)):
        assert ports.listening(ports.LOOPBACK, port)
