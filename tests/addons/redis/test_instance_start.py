"""`instances.start` on its failure paths, with real redis-server processes: a refused config and
a taken port are reported at once (not after the start timeout), without the passwords."""
from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from berth.addons.redis import instances
from berth.db import new_id

pytestmark = pytest.mark.slow


def details(port: int, **changes: Any) -> dict[str, Any]:
    limits = {"maxmemory": 25 * 1024 * 1024, "maxclients": 20, "appendonly": False}
    return {**instances.new_details("127.0.0.1", port, limits, "noeviction"), **changes}


def free_port() -> int:
    return instances.choose_port("127.0.0.1", set(), range(31500, 31999))


def test_a_config_redis_server_refuses_is_reported_at_once_and_redacted(env: Any) -> None:
    uuid, bad = new_id(), details(free_port(), maxmemory_policy="evict-everything")
    started = time.monotonic()
    with pytest.raises(instances.InstanceError, match="refused to start") as refused:
        instances.start(env.settings, uuid, bad, timeout=10)
    assert time.monotonic() - started < 5
    assert bad["password"] not in str(refused.value) and bad["admin_password"] not in str(refused.value)
    assert not instances.is_running(env.settings, uuid)


def test_a_taken_port_is_reported_as_port_in_use(env: Any) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        uuid = new_id()
        started = time.monotonic()
        with pytest.raises(instances.PortInUse):
            instances.start(env.settings, uuid, details(squatter.getsockname()[1]), timeout=10)
        assert time.monotonic() - started < 5
    assert not instances.is_running(env.settings, uuid)


def test_a_started_server_answers_and_a_second_start_adopts_it(env: Any) -> None:
    uuid, wanted = new_id(), details(free_port())
    try:
        assert instances.start(env.settings, uuid, wanted) is True
        pid = instances.pid(env.settings, uuid)
        assert pid and instances._ping(wanted)
        assert instances.start(env.settings, uuid, wanted) is False
        assert instances.pid(env.settings, uuid) == pid
        assert not instances._ping({**wanted, "password": "wrong"})
    finally:
        instances.stop(env.settings, uuid)  # no record: stop_all would not know of it
