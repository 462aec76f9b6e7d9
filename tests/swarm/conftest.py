"""A live Berth whose runner is in Swarm mode (BERTH_RUNNER=swarm) over the session's two-machine
swarm (tests/cluster/), with Berth's router (nginx in the root namespace) in front of the tasks.
Started once per module; tests isolate themselves by app and heal the machines they break."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.cluster.conftest import swarm_cluster, swarm_stack_image  # noqa: F401  (the session's swarm)
from tests.cluster.machines import Cluster
from tests.live_server import free_port
from tests.runner.conftest import RunPlatform, running_platform
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)


@pytest.fixture(scope="module")
def swarm_platform(stack_root: Path, swarm_cluster: Cluster, swarm_stack_image: str,  # noqa: F811
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPlatform]:
    with running_platform(tmp_path_factory.mktemp("swarm-runner"), free_port(), CRASH_COOL_OFF_SECONDS="1",
                          DYNO_BOOT_TIMEOUT_SECONDS="8", RUNNER="swarm",
                          DOCKER_HOST=swarm_cluster.manager.base_url, REGISTRY=swarm_cluster.registry) as platform:
        yield platform
