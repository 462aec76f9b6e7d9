"""How `make test` spreads test files over xdist workers (`-n 3 --dist loadfile`).

Per file, as `loadfile` does, with one exception: every file that uses the Swarm harness goes to
ONE worker as one unit, so the run starts one cluster (tests/cluster/conftest.py's session fixtures)
instead of one per file and worker. Three clusters of dockerds booting at once on two cores cost
more than the tests they serve. That unit is also handed out first: it is one of the run's longest.

The files are named here (xdist's controller sees only node ids, never markers);
`check_cluster_tests_are_grouped` fails the collection when a test marked `swarm` lives elsewhere,
so a new one cannot silently start a second cluster.
"""
from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

__all__ = ["CLUSTER_FILES", "SharedClusterScheduling", "check_cluster_tests_are_grouped", "scope_of"]

CLUSTER_SCOPE = "swarm-cluster"
CLUSTER_FILES = ("tests/cluster/", "tests/swarm/", "tests/dynos/test_images.py")


def scope_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return CLUSTER_SCOPE if path.startswith(CLUSTER_FILES) else path


class SharedClusterScheduling(LoadFileScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)

    def _assign_work_unit(self, node: WorkerController) -> None:
        # Units are handed out from the queue's front (largest first); the cluster's goes before all.
        if CLUSTER_SCOPE in self.workqueue:
            self.workqueue.move_to_end(CLUSTER_SCOPE, last=False)
        super()._assign_work_unit(node)


def check_cluster_tests_are_grouped(items: list[pytest.Item]) -> None:
    strays = sorted({item.nodeid.split("::", 1)[0] for item in items
                     if item.get_closest_marker("swarm") and scope_of(item.nodeid) != CLUSTER_SCOPE})
    if strays:
        raise pytest.UsageError(f"tests marked swarm outside {CLUSTER_FILES} (tests/scheduling.py): "
                                f"{', '.join(strays)}; add them there so they share the run's one cluster")
