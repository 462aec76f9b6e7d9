"""The keepers' spawner: a process per local backend that imported the keeper once and forks a
keeper for each dyno started. A start then costs a fork (milliseconds) instead of an interpreter's
start plus the keeper's imports (about 100 ms of CPU per dyno: ten dynos at once on two cores spent
half a second on that alone).

    python -S -m berth.platform.dynos.spawner    # stdin: a dyno directory a line → stdout: "<pid>" a line

It is single-threaded, so forking is safe. Each keeper is a session of its own, exactly as one
started by exec would be: it outlives the spawner and the runner, and the next runner adopts it by
pid and start time. The spawner reaps the keepers that end while it lives, and ends at EOF on stdin
(its backend, or the process holding it, went away).
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import IO

from berth.platform.dynos.keeper import Keeper


def serve(requests: IO[str], answers: IO[str]) -> None:
    signal.signal(signal.SIGCHLD, _reap)
    for line in requests:
        directory = Path(line.rstrip("\n"))
        try:
            answers.write(f"{spawn(directory)}\n")
        except OSError as exc:  # the dyno's directory went away, no more processes: the backend says so
            answers.write(f"error {exc}\n")
        answers.flush()


def spawn(directory: Path) -> int:
    """Fork a keeper for the dyno in `directory`; its stderr goes to the directory's keeper.log."""
    log = os.open(directory / "keeper.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        pid = os.fork()
    except OSError:
        os.close(log)
        raise
    if pid:
        os.close(log)
        return pid
    code = 1
    try:  # the keeper: never returns into the spawner's loop
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # it waits for its own sandbox
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _name_process(b"berth-keeper")
        code = Keeper(directory).run()
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _reap(*_: object) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _name_process(name: bytes) -> None:
    """`ps -o comm`/`top` show the keeper as such (its command line stays the spawner's)."""
    try:
        Path("/proc/self/comm").write_bytes(name[:15])
    except OSError:
        pass


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
