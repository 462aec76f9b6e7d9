"""Worker nudges: delivered to live workers; sockets left by killed workers are cleared."""
from __future__ import annotations

import socket
from pathlib import Path

from berth.broker.nudge import NudgeListener, nudge_workers, socket_dir


def test_a_nudge_wakes_the_listener(tmp_path: Path) -> None:
    listener = NudgeListener(tmp_path)
    try:
        assert listener.wait(0.01) is False
        nudge_workers(tmp_path)
        nudge_workers(tmp_path)
        assert listener.wait(1.0) is True
        assert listener.wait(0.01) is False  # the second nudge was drained with the first
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
