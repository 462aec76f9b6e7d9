"""The Swarm runner with each node's own engine (BERTH_SWARM_NODE_ENGINES): R14 and R15 from the
task containers' memory and OOM kills; attached one-offs (`heroku run`) on a swarm machine."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from tests.cluster.conftest import swarm_cluster, swarm_stack_image  # noqa: F401  (the session's swarm)
from tests.cluster.machines import Cluster
from tests.live_server import free_port
from tests.runner.conftest import RunPlatform, eventually, running_platform
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

FIRST_PULL = 240  # a machine's first task pulls the stack image from the registry
# Over standard-1X's 512 MB quota (R14, said while it holds), then past twice it: the container's
# 1 GB limit, where the kernel kills it (R15).
HOG = ('python3 -c "import time; a = b\'x\' * (700 * 2**20); print(\'holding 700 MB\', flush=True); time.sleep(8); '
       'print(\'growing\', flush=True); b = b\'y\' * (600 * 2**20); time.sleep(60)"')


def engines_of(cluster: Cluster) -> str:
    """BERTH_SWARM_NODE_ENGINES for the cluster: each machine's hostname (its node's) = its dockerd."""
    return ",".join(f"{machine.name}={machine.base_url}" for machine in cluster.machines)


@pytest.fixture(scope="module")
def swarm_platform(stack_root: Path, swarm_cluster: Cluster, swarm_stack_image: str,  # noqa: F811
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPlatform]:
    """As tests/swarm/conftest.py's, with the node engines (conftest's swarm_rendezvous uses this one)."""
    with running_platform(tmp_path_factory.mktemp("swarm-engines"), free_port(), CRASH_COOL_OFF_SECONDS="1",
                          DYNO_BOOT_TIMEOUT_SECONDS="8", RUNNER="swarm", RENDEZVOUS_PORT=str(free_port()),
                          DOCKER_HOST=swarm_cluster.manager.base_url, REGISTRY=swarm_cluster.registry,
                          SWARM_NODE_ENGINES=engines_of(swarm_cluster)) as platform:
        yield platform


def lines_of(platform: RunPlatform, app: str, dyno: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in platform.log(app, dyno=dyno) if " " in line]


def test_a_memory_hog_on_the_swarm_gets_r14_then_r15_and_is_restarted(swarm_platform: RunPlatform) -> None:
    app = "swarm-hog"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app, processes={"web": "python3 server.py", "hog": HOG})
    swarm_platform.scale(app, web=0, hog=1)

    def said(text: str) -> bool:
        return any(text in line for line in lines_of(swarm_platform, app, "hog.1"))
    eventually(lambda: said("heroku[hog.1]: Error R14 (Memory quota exceeded)"), timeout=FIRST_PULL,
               what=f"R14 for hog.1\n{swarm_platform.runner_log()[-3000:]}")
    eventually(lambda: said("heroku[hog.1]: Error R15 (Memory quota vastly exceeded)"), timeout=60,
               what=f"R15 for hog.1\n{swarm_platform.runner_log()[-3000:]}")
    lines = lines_of(swarm_platform, app, "hog.1")
    usage = re.search(r"heroku\[hog\.1\]: Process running mem=(\d+)M\((\d+\.\d)%\)", "\n".join(lines))
    assert usage and int(usage[1]) > 512 and float(usage[2]) > 100, lines  # over standard-1X's 512 MB
    order = [next(i for i, line in enumerate(lines) if text in line) for text in (
        "app[hog.1]: holding 700 MB", "Error R14 (Memory quota exceeded)", "Error R15 (Memory quota vastly exceeded)",
        "heroku[hog.1]: Stopping process with SIGKILL", "heroku[hog.1]: Process exited with status 137",
        "heroku[hog.1]: State changed from up to crashed")]
    assert order == sorted(order), lines
    # Swarm replaces the crashed task, as Heroku restarts a crashed dyno.
    eventually(lambda: sum("app[hog.1]: holding 700 MB" in line for line in lines_of(swarm_platform, app, "hog.1"))
               >= 2, timeout=60, what="hog.1 restarted after R15")
    swarm_platform.scale(app, hog=0)

