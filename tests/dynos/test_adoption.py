"""Dynos outlive the process holding the backend: a new backend adopts them (their keepers known by pid
and start time), never runs a second copy of a name, and records a dyno whose keeper died as crashed,
leaving no process and no cgroup behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from berth.platform.dynos.backend import DuplicateDyno, DynoSpec
from berth.platform.dynos.local import LocalBackend
from berth.platform.dynos.records import read_json
from berth.supervise.processes import alive

from .conftest import eventually
from .test_lifecycle import app_texts

pytestmark = pytest.mark.slow

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from berth.platform.dynos.backend import DynoSpec
    from berth.platform.dynos.local import LocalBackend
    from berth.platform.slug_store import LocalSlugStore
    data, stack, checksum = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    backend = LocalBackend(data, LocalSlugStore(data / "slugs"), stack=stack)
    status = backend.start(DynoSpec(app_id="adopted", name="web.1", slug_checksum=checksum, web=True,
                                    command='n=0; while true; do n=$((n+1)); echo "tick $n"; sleep 0.1; done'))
    print(status.id, flush=True)
    time.sleep(600)
""")


def start_in_a_holder(data_dir: Path, stack: Path, checksum: str) -> tuple[subprocess.Popen, str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir), str(stack), checksum],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    dyno_id = holder.stdout.readline().strip()
    assert dyno_id, "the holder did not start a dyno"
    return holder, dyno_id


def ticks(backend, dyno_id: str) -> int:
    lines: list = []
    backend.follow(dyno_id, lines.append).close()
    return len([t for t in app_texts(lines) if t.startswith("tick")])


def test_a_new_backend_adopts_the_dynos_of_a_killed_one(backend, data_dir, store, stack, checksum) -> None:
    holder, dyno_id = start_in_a_holder(data_dir, stack, checksum)
    eventually(lambda: ticks(backend, dyno_id) >= 3, what="the dyno's first ticks")
    holder.kill()  # kill -9: no chance to stop anything
    holder.wait()

    adopter = LocalBackend(data_dir, store, stack=stack)
    assert adopter.status(dyno_id).state in ("starting", "up")
    before = ticks(adopter, dyno_id)
    eventually(lambda: ticks(adopter, dyno_id) > before + 3, what="ticks after the restart")  # it kept running
    with pytest.raises(DuplicateDyno):
        adopter.start(DynoSpec(app_id="adopted", name="web.1", slug_checksum=checksum, command="true"))
    stopped = adopter.stop(dyno_id, grace=2)
    assert (stopped.state, stopped.exit_status) == ("down", 143)
    adopter.remove(dyno_id)


def test_a_dyno_whose_keeper_died_is_recorded_crashed_and_leaves_nothing(backend, data_dir, store, stack,
                                                                          checksum) -> None:
    holder, dyno_id = start_in_a_holder(data_dir, stack, checksum)
    eventually(lambda: ticks(backend, dyno_id) >= 3, what="the dyno's first ticks")
    holder.kill()
    holder.wait()
    directory = data_dir / "dynos" / dyno_id
    meta, state = read_json(directory / "meta.json"), read_json(directory / "state.json")
    members = [int(pid) for pid in Path(state["cgroups"][0], "cgroup.procs").read_text().split()]
    assert len(members) >= 2  # bwrap, its init, bash, sleep
    os.kill(meta["keeper_pid"], signal.SIGKILL)
    eventually(lambda: not Path(f"/proc/{meta['keeper_pid']}/stat").exists() or
               Path(f"/proc/{meta['keeper_pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
               what="the keeper's end")

    adopter = LocalBackend(data_dir, store, stack=stack)
    status = adopter.status(dyno_id)
    assert status.state == "crashed" and read_json(directory / "state.json")["state"] == "crashed"
    eventually(lambda: not any(Path(group).exists() for group in state["cgroups"]), what="the cgroups' removal")
    assert not [pid for pid in members if alive(pid)]  # nothing of the dyno runs on
    assert not _processes_with(str(directory))  # nor its keeper
    # The name is free again, for one copy.
    again = adopter.start(DynoSpec(app_id="adopted", name="web.1", slug_checksum=checksum, command="sleep 30"))
    adopter.stop(again.id, grace=1)


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found
