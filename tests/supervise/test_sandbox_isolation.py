"""What a process inside the sandbox sees: the app at /app, a read-only stack, a private /tmp, its own
PID namespace, no host files, and no way to become root."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from berth.supervise.sandbox import Bind, Sandbox, run

pytestmark = pytest.mark.slow


def test_the_app_is_at_app_and_a_build_writes_there_as_the_sandbox_account(sandbox, app_dir: Path) -> None:
    (app_dir / "Procfile").write_text("web: python3 app.py\n")
    ran = sandbox.sh("cat /app/Procfile; pwd; echo $HOME; echo built > /app/out.txt")
    assert ran.result.exit_code == 0, ran.output
    assert ran.lines == ["web: python3 app.py", "/app", "/app"]
    written = app_dir / "out.txt"
    assert written.read_text() == "built\n"
    assert written.stat().st_uid == sandbox.spec.account.uid != 0


def test_a_dyno_cannot_change_its_slug(sandbox, app_dir: Path) -> None:
    (app_dir / "app.py").write_text("print('v1')\n")
    ran = sandbox.sh("echo changed > /app/app.py", app_writable=False)
    assert ran.result.exit_code != 0
    assert "Read-only file system" in ran.output
    assert (app_dir / "app.py").read_text() == "print('v1')\n"


def test_the_stack_is_read_only(sandbox, stack_root: Path) -> None:
    ran = sandbox.sh("touch /usr/bin/planted; echo x > /etc/planted; mkdir /planted; echo done")
    assert ran.lines.count("done") == 1
    assert ran.output.count("Read-only file system") == 3, ran.output
    assert not (stack_root / "usr/bin/planted").exists() and not (stack_root / "etc/planted").exists()


def test_berths_data_dir_and_another_apps_files_are_not_there(sandbox, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    other_app = data_dir / "apps" / "other" / "app"
    other_app.mkdir(parents=True)
    (other_app / "secret.txt").write_text("the other tenant's")
    (data_dir / "berth.key").write_text("key")
    os.chmod(data_dir, 0o755)  # even a readable data dir must not be reachable
    host_paths = [str(data_dir), str(other_app / "secret.txt"), str(tmp_path), "/work", "/var/lib/postgresql"]
    ran = sandbox.sh('for p in "$@"; do test -e "$p" && echo "visible: $p"; done; '
                     'find / -path /proc -prune -o \\( -name secret.txt -o -name berth.key \\) -print 2>/dev/null; echo checked',
                     "sh", *host_paths)
    assert ran.lines == ["checked"], ran.output


def test_tmp_is_private_to_each_sandbox(sandbox) -> None:
    marker = Path("/tmp") / f"berth-host-marker-{os.getpid()}"
    marker.write_text("host")
    try:
        first = sandbox.sh(f"ls -A /tmp; echo inside > {marker}-left; test -e {marker} && echo host-visible")
        second = sandbox.sh("ls -A /tmp")
    finally:
        marker.unlink()
    assert first.lines == [] and second.lines == []
    assert not Path(f"{marker}-left").exists()


def test_pid_1_is_the_sandboxs_own_and_no_host_process_is_visible(sandbox) -> None:
    ran = sandbox.sh("cat /proc/1/comm; ls /proc | grep -c '^[0-9]'")
    comm, count = ran.lines
    assert comm == "bwrap"  # bwrap's init, not the host's init
    assert int(count) <= 4  # init, sh, grep and ls at most: none of the host's hundreds


def test_the_user_is_not_root_and_cannot_become_it(sandbox) -> None:
    ran = sandbox.sh(
        "id -u; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status; "
        "su -c id root </dev/null && echo su-worked; "
        "unshare -r id -u && echo userns-worked; "
        "python3 -c 'import os; os.setuid(0)' 2>/dev/null && echo setuid-worked; "
        "mount -t tmpfs none /app 2>/dev/null && echo mount-worked; echo end")
    uid, *status = ran.lines[:4]
    assert sandbox("whoami").lines == [sandbox.spec.account.name]
    assert int(uid) == sandbox.spec.account.uid != 0
    assert sorted(status) == ["CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1"]
    assert not [line for line in ran.lines if line.endswith("-worked")], ran.output
    assert ran.lines[-1] == "end"


def test_with_network_the_hosts_resolver_is_used(sandbox) -> None:
    ran = sandbox("cat", "/etc/resolv.conf", network=True)
    assert ran.lines == Path("/etc/resolv.conf").read_text().splitlines()


def test_without_network_only_a_loopback_exists(sandbox) -> None:
    ran = sandbox.sh("ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut -d: -f1")
    assert [line.strip() for line in ran.lines] == ["lo"]


def test_cache_and_env_dirs_are_bound_where_asked(sandbox, tmp_path: Path) -> None:
    cache, env = tmp_path / "cache", tmp_path / "env"
    cache.mkdir()
    env.mkdir()
    (env / "DATABASE_URL").write_text("postgres://x")
    ran = sandbox.sh("cat /tmp/env/DATABASE_URL; echo; echo kept > /tmp/cache/pip; echo x > /tmp/env/NEW || echo env-ro",
                     binds=[Bind(cache, "/tmp/cache", writable=True), Bind(env, "/tmp/env")])
    assert ran.lines[0] == "postgres://x" and ran.lines[-1] == "env-ro"
    assert (cache / "pip").read_text() == "kept\n"
    assert not (env / "NEW").exists()


def test_environment_is_only_what_the_caller_gives(sandbox) -> None:
    os.environ["BERTH_HOST_ONLY_SECRET"] = "leak"
    try:
        ran = sandbox.sh("env | sort", env={"DATABASE_URL": "postgres://x"})
    finally:
        del os.environ["BERTH_HOST_ONLY_SECRET"]
    names = {line.split("=", 1)[0] for line in ran.lines}
    assert "DATABASE_URL" in names and "BERTH_HOST_ONLY_SECRET" not in names
    assert "HOME=/app" in ran.lines


def test_output_streams_while_the_process_runs(sandbox) -> None:
    seen: list[float] = []
    started = time.monotonic()
    run(replace(sandbox.spec, argv=["sh", "-c", "echo first; sleep 1; echo second"]),
        lambda line: seen.append(time.monotonic() - started))
    assert len(seen) == 2
    assert seen[0] < 0.8 <= seen[1]  # the first line arrived before the program ended


def test_a_reader_behind_a_finished_sandbox_still_gets_every_line(sandbox) -> None:
    """The pipe is closed by its reader at its end, not by the cleanup while lines are still in it."""
    started = Sandbox(replace(sandbox.spec, argv=["seq", "1", "5000"]))  # fits the pipe: it ends at once
    result = started.wait()  # cleans up before anyone has read a line
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(started.lines()))
    reader.start()
    reader.join(10)
    assert result.exit_code == 0 and len(lines) == 5000 and lines[-1] == "5000"


def test_a_pids_limit_bounds_the_processes_inside(sandbox) -> None:
    forks = ("import os, time\ncount = 0\ntry:\n    for _ in range(40):\n        if os.fork() == 0:\n"
             "            time.sleep(5)\n            os._exit(0)\n        count += 1\nexcept OSError:\n    pass\n"
             "print(count)\n")
    ran = sandbox("python3", "-c", forks, pids_limit=12)
    assert ran.result.exit_code == 0, ran.output
    assert int(ran.lines[-1]) < 12, ran.output
    unlimited = sandbox("python3", "-c", forks.replace("time.sleep(5)", "time.sleep(0.5)"))
    assert unlimited.lines[-1] == "40", unlimited.output
