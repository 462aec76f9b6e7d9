"""Fixtures over the Swarm test harness (tests/cluster/machines.py). A test module elsewhere imports
the ones it uses: `from tests.cluster.conftest import swarm, swarm_cluster  # noqa: F401`.

One cluster per test session (per xdist worker) and per size; tests share it and are isolated by
`swarm`, which heals the machines and removes every service after each test. A host without the
harness's tools fails these tests with what to install: it never skips them.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from berth.supervise.stack import stacks_dir
from tests.cluster.machines import Cluster, missing_tools, remove_services, start_cluster


# The registry's images outlive the run beside the stack they are made from (.cache, outside git):
# the stack image is pushed once per machine and stack, not once per run.
REGISTRY_CACHE = stacks_dir().parent / "swarm-registry"


def _cluster(machines: int) -> Iterator[Cluster]:
    missing = missing_tools()
    if missing:
        pytest.fail(f"the Swarm harness needs {', '.join(missing)}: run `make setup` as root")
    with start_cluster(machines, registry_storage=REGISTRY_CACHE) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def swarm_cluster() -> Iterator[Cluster]:
    """Two machines: m1 (manager, registry) and m2 (worker)."""
    yield from _cluster(2)


@pytest.fixture(scope="session")
def swarm_cluster_three() -> Iterator[Cluster]:
    """Three machines: m1 (manager, registry), m2 and m3 (workers)."""
    yield from _cluster(3)


@pytest.fixture
def swarm(swarm_cluster: Cluster) -> Iterator[Cluster]:
    """The session's 2-machine cluster for one test, left whole and empty for the next."""
    yield swarm_cluster
    swarm_cluster.heal()
    remove_services(swarm_cluster)
