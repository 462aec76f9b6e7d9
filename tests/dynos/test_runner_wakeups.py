"""A dyno's keeper wakes the runner for the states it acts on (up, crashed, down) and not while the
dyno starts: ten dynos starting at once would otherwise wake it for twenty rounds, CPU that the
dynos booting beside it need. (A module of its own: no other dyno of the module's backend wakes it.)"""
from __future__ import annotations

import time
import uuid

import pytest

from berth.jobs.wakeup import RunnerListener
from berth.platform.dynos.backend import DynoSpec

from .conftest import eventually

pytestmark = pytest.mark.slow


def test_a_web_dyno_wakes_the_runner_once_it_is_up_and_once_it_is_down(backend, checksum, data_dir) -> None:
    listener = RunnerListener(data_dir)  # where a runner of this data dir listens
    try:
        status = backend.start(DynoSpec(app_id=str(uuid.uuid4()), name="web.1", slug_checksum=checksum, web=True,
                                        command='sleep 0.5; exec python3 -m http.server "$PORT"'))
        woken = 0
        deadline = time.monotonic() + 30
        while backend.status(status.id).state != "up":
            assert time.monotonic() < deadline, "the dyno did not come up"
            woken += listener.wait(0.05)
        woken += listener.wait(0.5)  # one sent just after the state was read
        assert woken == 1
        backend.stop(status.id, grace=5)
        eventually(lambda: backend.status(status.id).state == "down", what="the dyno down")
        assert listener.wait(5) == 1
    finally:
        listener.close()
