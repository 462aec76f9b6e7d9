"""What a dyno cannot do: see Berth's data dir or another dyno's files, signal a process outside its
sandbox (even one of the same account), fork past its size's process limit, or outgrow its memory."""
from __future__ import annotations

import subprocess
import time

import pytest

from berth.platform.dynos.backend import DynoSize, DynoSpec
from berth.supervise.processes import alive
from berth.supervise.sandbox import sandbox_account

from .conftest import eventually
from .test_lifecycle import app_texts, collect

pytestmark = pytest.mark.slow


def run_to_end(backend, checksum: str, name: str, command: str, **options) -> tuple[object, list]:
    status = backend.start(DynoSpec(app_id="isolation", name=name, slug_checksum=checksum, command=command,
                                    **options))
    lines = collect(backend, status.id)
    return backend.status(status.id), lines


def test_a_dyno_sees_no_berth_data_and_no_other_dynos_files(backend, checksum, data_dir) -> None:
    neighbour = backend.start(DynoSpec(app_id="other-app", name="web.1", slug_checksum=checksum,
                                       command="echo secret > /app/neighbour-file; sleep 60"))
    neighbour_app = data_dir / "dynos" / neighbour.id / "app"
    eventually(lambda: (neighbour_app / "neighbour-file").exists(), what="the neighbour's file")
    status, lines = run_to_end(backend, checksum, "files.1",
                               f"ls {data_dir} {data_dir / 'slugs'} {neighbour_app} 2>&1; "
                               f"cat {neighbour_app / 'neighbour-file'} 2>&1; ls /app | grep -c neighbour-file")
    texts = app_texts(lines)
    assert all("No such file or directory" in text for text in texts[:4]), texts
    assert texts[4] == "0" and status.state == "crashed"
    backend.stop(neighbour.id, grace=1)


def test_a_dyno_cannot_signal_processes_outside_its_sandbox(backend, checksum) -> None:
    account = sandbox_account()  # the worst case: a host process of the very account dynos run as
    victim = subprocess.Popen(["sleep", "120"], start_new_session=True, **account.popen_kwargs())
    try:
        _, lines = run_to_end(backend, checksum, "signals.1",
                              f"kill -TERM {victim.pid} 2>&1; echo status=$?; kill -KILL -1 2>&1; echo after")
        texts = app_texts(lines)
        assert "status=1" in texts and any("No such process" in text for text in texts), texts
        time.sleep(0.3)
        assert victim.poll() is None and alive(victim.pid)
    finally:
        victim.kill()
        victim.wait()


FORK_BOMB = """python3 -c '
import os, time
count = 0
try:
    for _ in range(400):  # bounded: a test must not hurt the machine if the limit fails
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
        count += 1
except OSError as exc:
    print("fork refused after", count, exc.strerror, flush=True)
print("forked", count, flush=True)
'"""


def test_a_fork_bomb_hurts_only_its_own_dyno(backend, checksum) -> None:
    small = DynoSize("test", 256 * 2**20, 512 * 2**20, processes=32)
    bomb = backend.start(DynoSpec(app_id="isolation", name="bomb.1", slug_checksum=checksum, command=FORK_BOMB,
                                  size=small))
    lines: list = []
    follower = backend.follow(bomb.id, lines.append)
    eventually(lambda: any(t.startswith("forked") for t in app_texts(lines)), what="the bomb's end")
    refused = [t for t in app_texts(lines) if t.startswith("fork refused after")]
    assert refused and int(refused[0].split()[3]) < 32, app_texts(lines)
    # Meanwhile another dyno starts and runs as usual.
    _, other = run_to_end(backend, checksum, "calm.1", "echo calm; (echo in a subshell)")
    assert app_texts(other) == ["calm", "in a subshell"]
    backend.stop(bomb.id, grace=1)
    follower.close()


def test_memory_over_quota_logs_r14_and_at_the_kill_threshold_r15_stops_the_dyno(backend, checksum) -> None:
    size = DynoSize("test", 48 * 2**20, 128 * 2**20, processes=64)
    hog = ("python3 -c 'import time; block = b\"x\" * (80 * 2**20); print(\"holding\", flush=True); "
           "time.sleep(3); more = b\"y\" * (200 * 2**20); print(\"never\")'")
    status, lines = run_to_end(backend, checksum, "hog.1", hog, size=size)
    texts = [line.text for line in lines]
    assert "holding" in texts and "never" not in texts
    assert "Error R14 (Memory quota exceeded)" in texts, texts
    assert any(text.startswith("Process running mem=") for text in texts)
    assert "Error R15 (Memory quota vastly exceeded)" in texts, texts
    assert status.state == "crashed" and status.exit_status == 137


def test_page_cache_does_not_count_against_the_quota(backend, checksum) -> None:
    size = DynoSize("test", 48 * 2**20, 128 * 2**20, processes=64)
    status, lines = run_to_end(backend, checksum, "reader.1",
                               "dd if=/dev/zero of=/app/big bs=1M count=96 status=none; cat /app/big > /dev/null; "
                               "sleep 2; cat /app/big > /dev/null; sleep 1.5; echo read", size=size)
    texts = [line.text for line in lines]
    assert "read" in texts and status.exit_status == 0
    assert not [text for text in texts if "R14" in text or "R15" in text], texts
