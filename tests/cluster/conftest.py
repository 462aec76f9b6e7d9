"""Fixtures over the Swarm test harness (tests/cluster/machines.py). A test module elsewhere imports
the ones it uses: `from tests.cluster.conftest import swarm, swarm_cluster  # noqa: F401`.

One cluster per test session (per xdist worker) and per size; tests share it and are isolated by
`swarm`, which heals the machines and removes every service after each test. `swarm_stack_image`
is the stack image in that cluster's registry (berth.platform.dynos.images), made once. A host without the
harness's tools fails these tests with what to install: it never skips them.
"""
from __future__ import annotations

import fcntl
import sys
from typing import Iterator

import pytest

from berth.platform.dynos.images import ensure_stack_image
from berth.supervise import stack as stacks
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


@pytest.fixture(scope="module")
def swarm_cluster_three() -> Iterator[Cluster]:
    """Three machines: m1 (manager, registry), m2 and m3 (workers); only the harness's own tests use
    them, so they stop with the module instead of idling beside the shared two for the whole run."""
    yield from _cluster(3)


@pytest.fixture
def swarm(swarm_cluster: Cluster) -> Iterator[Cluster]:
    """The session's 2-machine cluster for one test, left whole and empty for the next."""
    yield swarm_cluster
    swarm_cluster.heal()
    remove_services(swarm_cluster)


@pytest.fixture(scope="session")
def swarm_stack_image(swarm_cluster: Cluster) -> str:
    """The stack image in the 2-machine cluster's registry. xdist workers each start a cluster of
    their own but share the registry cache: one pushes the stack while the others wait, then find it."""
    if not stacks.is_built(stacks.stack_root()):
        stacks.build(out=sys.stderr)  # minutes, once per machine and package list
    REGISTRY_CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(REGISTRY_CACHE.with_name("swarm-registry.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return ensure_stack_image(swarm_cluster.manager.client(), swarm_cluster.registry, stacks.require_stack())
