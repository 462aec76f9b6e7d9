"""berth.supervise.files, .readiness and .loop: files in a server's directory are written and read
without following what the server may have planted there; waiting stops at the first sign of a
dead server; a supervisor's round goes on past a failing check."""
from __future__ import annotations

import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from berth.supervise import files, loop, readiness
from berth.supervise.accounts import ServiceAccount

BERTHS_OWN = ServiceAccount(None)


def test_writing_replaces_a_planted_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    (server_dir / "redis.conf").symlink_to(victim)
    files.write_owned(server_dir / "redis.conf", "port 0\n", BERTHS_OWN)
    assert victim.read_text() == "keep me"
    written = server_dir / "redis.conf"
    assert not written.is_symlink() and written.read_text() == "port 0\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_reading_takes_only_regular_files(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("root's")
    (tmp_path / "log").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "fifo")  # would block a plain open for ever
    assert files.read_regular(tmp_path / "log") == ""
    assert files.read_regular(tmp_path / "fifo") == ""
    assert files.read_regular(tmp_path / "missing") == ""
    assert files.read_regular(tmp_path / "secret", 2, 3) == "ot'"
    assert files.has_content(tmp_path / "secret") and not files.has_content(tmp_path / "log")


def test_directories_get_exactly_the_mode_asked_for(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        files.make_dirs(tmp_path / "a" / "b", 0o711)
    finally:
        os.umask(old)
    assert [stat.S_IMODE((tmp_path / p).stat().st_mode) for p in ("a", "a/b")] == [0o711, 0o711]
    assert files.tail("one\ntwo\nthree\n\n", 2) == "two\nthree"


def test_waiting_ends_when_ready_when_failed_or_at_the_timeout() -> None:
    answers = iter([False, False, True])
    assert readiness.wait_until(lambda: next(answers), 5.0, interval=0.01)

    def died() -> None:
        raise RuntimeError("exited at start")

    begun = time.monotonic()
    with pytest.raises(RuntimeError, match="exited at start"):
        readiness.wait_until(lambda: False, 30.0, failed=died)
    assert time.monotonic() - begun < 1.0
    assert not readiness.wait_until(lambda: False, 0.2, interval=0.05)
    assert time.monotonic() - begun >= 0.2


def test_one_failing_check_does_not_stop_the_round(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise OSError("disk full")

    log = logging.getLogger("test.supervisor")
    with caplog.at_level(logging.ERROR, logger="test.supervisor"):
        loop.run_each((("first", lambda: ran.append("first")), ("broken", broken),
                       ("last", lambda: ran.append("last"))), log, "supervising %s failed")
    assert ran == ["first", "last"]
    assert "supervising broken failed" in caplog.text and "disk full" in caplog.text


def test_rounds_run_at_their_own_pace_until_stopped() -> None:
    stop = threading.Event()
    fast: list[float] = []
    slow: list[float] = []

    def fast_round() -> None:
        fast.append(time.monotonic())
        if len(fast) == 6:
            stop.set()

    thread = threading.Thread(target=loop.run_until_stopped,
                              args=(stop, (loop.Every(0.05, fast_round), loop.Every(10.0, lambda: slow.append(1)))))
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and len(fast) == 6 and slow == [1]  # the slow one ran at once, then waited


def test_restart_and_stop_passes_report_what_they_did(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.supervisor")
    running = {"up": True, "down": False, "gone": False, "broken": False}

    def start(name: str) -> bool:
        if name == "broken":
            raise OSError("no such binary")
        return name != "gone"  # deprovisioned meanwhile: not started

    def stop(name: str) -> bool:
        if name == "broken":
            raise OSError("stuck")
        return running[name]

    with caplog.at_level(logging.WARNING, logger="test.supervisor"):
        restarted = loop.restart_stopped(running, running=running.__getitem__, start=start, errors=(OSError,),
                                         what="test server", log=log)
        stopped = loop.stop_each(running, stop=stop, errors=(OSError,), what="test server", log=log)
    assert restarted == ["down"]
    assert "test server down had stopped; restarted" in caplog.text
    assert "cannot restart test server broken: no such binary" in caplog.text
    assert stopped == ["up"] and "cannot stop test server broken: stuck" in caplog.text
