"""A live Berth whose runner is in Swarm mode (BERTH_RUNNER=swarm) over the session's two-machine
swarm (tests/cluster/), with Berth's router (nginx in the root namespace) in front of the tasks.
Started once per module; tests isolate themselves by app and heal the machines they break."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.cluster.conftest import swarm_cluster, swarm_stack_image  # noqa: F401  (the session's swarm)
from tests.cluster.machines import Cluster
from tests.live_server import ROOT, free_port, stop, wait_for_tls
from tests.runner.conftest import RunPlatform, running_platform
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)


@pytest.fixture(scope="module")
def swarm_platform(stack_root: Path, swarm_cluster: Cluster, swarm_stack_image: str,  # noqa: F811
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPlatform]:
    with running_platform(tmp_path_factory.mktemp("swarm-runner"), free_port(), CRASH_COOL_OFF_SECONDS="1",
                          DYNO_BOOT_TIMEOUT_SECONDS="8", RUNNER="swarm", RENDEZVOUS_PORT=str(free_port()),
                          DOCKER_HOST=swarm_cluster.manager.base_url, REGISTRY=swarm_cluster.registry) as platform:
        yield platform


@pytest.fixture(scope="module")
def swarm_rendezvous(swarm_platform: RunPlatform) -> Iterator[subprocess.Popen[bytes]]:
    """The rendezvous host (one-off dynos) of the swarm platform."""
    log = swarm_platform.built.server.log.with_name("rendezvous.log")
    with log.open("wb") as out:
        host = subprocess.Popen([sys.executable, "-m", "berth.rendezvous"], cwd=ROOT, env=swarm_platform.env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_tls(int(swarm_platform.env["BERTH_RENDEZVOUS_PORT"]), host, log)
        yield host
    finally:
        stop(host)
