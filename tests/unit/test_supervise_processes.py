"""berth.supervise.processes on real child processes: started detached as their account,
recognised by pid and command line (never by a reused pid, never as a zombie), stopped with
SIGTERM and, when they ignore it, SIGKILL."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from berth.supervise import processes
from berth.supervise.accounts import ServiceAccount, remove_service_account, service_account

BERTHS_OWN = ServiceAccount(None)  # what service_account gives when Berth is not root


@pytest.fixture
def started() -> Iterator[list["subprocess.Popen[Any]"]]:
    """Children a test starts; whatever is left is killed and reaped."""
    children: list[subprocess.Popen[Any]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()


def sleeper(started: list["subprocess.Popen[Any]"], *words: str) -> "subprocess.Popen[Any]":
    """A stand-in server: a Python that sleeps, with `words` (a config path, say) among its arguments."""
    child = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)", *words], BERTHS_OWN, cwd="/",
                            env=os.environ)
    started.append(child)
    return child


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to a service account needs root")
def test_a_spawned_server_runs_detached_as_its_account_without_berths_settings(
        started: list["subprocess.Popen[Any]"]) -> None:
    name = f"berth-t{secrets.token_hex(4)}"
    try:
        account = service_account(name)
        env = processes.without_berth_settings({**os.environ, "BERTH_SECRET_KEYS": "s3cret", "KEPT": "yes"})
        child = processes.spawn(["sh", "-c", 'echo "$(id -u) $(id -G) $HOME $KEPT ${BERTH_SECRET_KEYS:-none}"; '
                                 "exec sleep 60"], account, cwd="/", env=env, stdout=subprocess.PIPE, text=True)
        started.append(child)
        assert child.stdout is not None
        uid, groups, home, kept, secret = child.stdout.readline().split()
        assert (int(uid), int(groups)) == (account.uid, account.gid)  # no supplementary groups of root's
        assert (home, kept, secret) == ("/nonexistent", "yes", "none")
        assert os.getsid(child.pid) == child.pid != os.getsid(0)  # a session of its own
        wait_for(lambda: processes.runs_with(child.pid, "sleep 60"))  # after exec
        assert os.stat(f"/proc/{child.pid}").st_uid == account.uid
    finally:
        for child in started:
            child.kill()
            child.wait()
        remove_service_account(name)


def test_a_server_is_known_by_its_pid_and_its_command_line(started: list["subprocess.Popen[Any]"]) -> None:
    marker = f"/tmp/berth-test-{secrets.token_hex(4)}.conf"
    child = sleeper(started, marker)
    wait_for(lambda: processes.command_line(child.pid) == [sys.executable, "-c", "import time; time.sleep(60)",
                                                           marker, ""])
    assert processes.alive(child.pid)
    assert processes.runs_with(child.pid, marker, whole_argument=True)
    assert not processes.runs_with(child.pid, marker[:-5], whole_argument=True)  # a whole argument only
    assert processes.runs_with(child.pid, f"sleep(60) {marker}")  # or anywhere in its text (a process title)
    assert not processes.runs_with(os.getpid(), marker)  # a pid reused by another process is not it
    assert not processes.runs_with(None, marker)
    name = Path(f"/proc/{child.pid}/comm").read_text().strip()
    assert processes.find(name, marker) == child.pid  # its pid file lost: found by its name and marker
    assert processes.find(name, marker + ".other") is None
    assert processes.find("redis-server", marker) is None


def test_a_zombie_is_not_alive_and_a_child_is_reaped_when_asked_about(
        started: list["subprocess.Popen[Any]"]) -> None:
    child = processes.spawn(["sh", "-c", "exit 3"], BERTHS_OWN, cwd="/", env=os.environ)
    started.append(child)
    wait_for(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")
    assert not processes.alive(child.pid)  # exited, not yet reaped
    assert not processes.runs_with(child.pid, "sh")
    children = processes.Children()
    children.add(child)
    assert children.running(child.pid) is False and children.exit_status(child.pid) == 3
    assert not Path(f"/proc/{child.pid}").exists()  # reaped
    assert children.running(child.pid) is None  # no longer a child it tracks


def test_a_child_counts_as_running_from_the_moment_it_is_started(started: list["subprocess.Popen[Any]"]) -> None:
    children = processes.Children()
    child = sleeper(started)
    children.add(child)
    assert children.running(child.pid) is True  # even before /proc shows its command line
    assert children.running(os.getpid()) is None
    children.forget(child.pid)
    assert children.running(child.pid) is None


def test_stop_asks_politely_first(started: list["subprocess.Popen[Any]"]) -> None:
    child = sleeper(started)
    processes.stop(child.pid, lambda: child.poll() is None, timeout=10.0)
    assert child.returncode == -signal.SIGTERM


def test_stop_kills_a_server_that_ignores_sigterm(started: list["subprocess.Popen[Any]"]) -> None:
    child = processes.spawn([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                             "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                            BERTHS_OWN, cwd="/", env=os.environ, stdout=subprocess.PIPE, text=True)
    started.append(child)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    begun = time.monotonic()
    processes.stop(child.pid, lambda: child.poll() is None, timeout=0.5)
    assert child.returncode == -signal.SIGKILL and time.monotonic() - begun >= 0.5


def test_a_process_that_outlives_sigkill_is_reported(started: list["subprocess.Popen[Any]"]) -> None:
    child = sleeper(started)
    with pytest.raises(processes.DoesNotStop):
        processes.stop(child.pid, lambda: True, timeout=0.1, kill_timeout=0.1)  # "still there"
    assert child.wait(5) == -signal.SIGTERM  # it was gone all along: the check said otherwise


def test_a_tool_runs_to_completion_with_its_output_captured(tmp_path: Path) -> None:
    done = processes.run(["sh", "-c", 'pwd; echo "$WHO" >&2; exit 4'], BERTHS_OWN, cwd=tmp_path,
                         env={**os.environ, "WHO": "tool"}, timeout=10)
    assert (done.returncode, done.stdout, done.stderr) == (4, f"{tmp_path}\n", "tool\n")


def test_servers_never_see_berths_own_settings(started: list["subprocess.Popen[Any]"], tmp_path: Path) -> None:
    """A server's account reads its environment; Berth's secrets (keys, database URL) are not in it."""
    env = {**os.environ, "BERTH_SECRET_KEYS": "secret-key", "BERTH_DATABASE_URL": "postgresql://x:pw@h/db",
           "LC_ALL": "C"}
    seen = processes.run([sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
                         BERTHS_OWN, cwd="/", env=env, timeout=30)
    ran_with = json.loads(seen.stdout)
    assert ran_with["LC_ALL"] == "C" and not [key for key in ran_with if key.startswith("BERTH_")]
    out = tmp_path / "environ"
    child = processes.spawn([sys.executable, "-c", f"import os; open({str(out)!r}, 'w').write(repr(dict(os.environ)))"],
                            BERTHS_OWN, cwd="/", env=env)
    started.append(child)
    child.wait(timeout=30)
    assert "BERTH_" not in out.read_text() and "secret-key" not in out.read_text()
