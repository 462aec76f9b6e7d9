"""Worker nudges: delivered to live workers; sockets left by killed workers are cleared."""
from __future__ import annotations

import socket
from pathlib import Path

from berth.jobs.wakeup import Waiter, NudgeListener, nudge_workers, signal_waiters, socket_dir


def test_a_nudge_wakes_the_listener(tmp_path: Path) -> None:
    listener = NudgeListener(tmp_path)
    try:
        assert listener.wait(0.01) == 0
        nudge_workers(tmp_path)
        nudge_workers(tmp_path)
        assert listener.wait(1.0) == 2  # both taken at once: one per operation queued
        assert listener.wait(0.01) == 0
    finally:
        listener.close()
    assert not listener.path.exists()


def test_a_killed_workers_socket_is_removed(tmp_path: Path) -> None:
    stale = socket_dir(tmp_path) / "worker-999999.sock"
    stale.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # as SIGKILL leaves it: the file stays, nobody listens
    nudge_workers(tmp_path)
    assert not stale.exists()


def test_no_run_directory_is_fine(tmp_path: Path) -> None:
    nudge_workers(tmp_path / "nowhere")


def test_an_answer_wakes_only_the_requests_waiting_for_that_addon(tmp_path: Path) -> None:
    mine, other = "0f3c2a9e-1111-4d2b-9c1e-5a6b7c8d9e0f", "7a1b2c3d-2222-4e5f-8a9b-0c1d2e3f4a5b"
    with Waiter(tmp_path, mine) as waiter, Waiter(tmp_path, other) as bystander:
        signal_waiters(tmp_path, mine)
        assert waiter.wait(1.0) == 1
        assert bystander.wait(0.01) == 0
    assert not waiter.path.exists() and not bystander.path.exists()


def test_an_answer_with_nobody_waiting_is_fine(tmp_path: Path) -> None:
    signal_waiters(tmp_path, "0f3c2a9e-1111-4d2b-9c1e-5a6b7c8d9e0f")  # no run directory yet
    NudgeListener(tmp_path).close()
    signal_waiters(tmp_path, "0f3c2a9e-1111-4d2b-9c1e-5a6b7c8d9e0f")


def test_a_runner_nudge_wakes_only_the_runner(tmp_path: Path) -> None:
    from berth.jobs.wakeup import RunnerListener, nudge_runner

    runner, worker = RunnerListener(tmp_path), NudgeListener(tmp_path)
    try:
        nudge_runner(tmp_path)
        assert runner.wait(1.0) == 1
        assert worker.wait(0.05) == 0
    finally:
        runner.close()
        worker.close()
