"""Keepers are forked from the backend's spawner (dynos/spawner.py): a keeper outlives the spawner it
came from, and a spawner that died is replaced at the next start."""
from __future__ import annotations

import uuid

import pytest

from berth.platform.dynos.backend import DynoSpec
from berth.platform.dynos.records import read_json

from .conftest import eventually

pytestmark = pytest.mark.slow

SERVE = 'exec python3 -m http.server "$PORT"'


def test_a_dead_spawner_is_replaced_and_its_keepers_live_on(backend, checksum, data_dir) -> None:
    app = str(uuid.uuid4())
    first = backend.start(DynoSpec(app_id=app, name="web.1", slug_checksum=checksum, web=True, command=SERVE))
    eventually(lambda: backend.status(first.id).state == "up", what="web.1 up")
    spawner = backend._spawner._process
    assert spawner is not None
    keeper = read_json(data_dir / "dynos" / first.id / "meta.json")["keeper_pid"]
    assert open(f"/proc/{keeper}/stat").read().rsplit(")", 1)[1].split()[1] == str(spawner.pid)  # forked from it
    spawner.kill()
    spawner.wait()

    second = backend.start(DynoSpec(app_id=app, name="web.2", slug_checksum=checksum, web=True, command=SERVE))
    eventually(lambda: backend.status(second.id).state == "up", what="web.2 up from a new spawner")
    assert backend._spawner._process is not None and backend._spawner._process.pid != spawner.pid
    assert backend.status(first.id).state == "up"  # its keeper never depended on the spawner living
    for dyno in (first, second):
        assert backend.stop(dyno.id, grace=2).state == "down"
