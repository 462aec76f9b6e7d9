"""The run's scheduling (tests/scheduling.py): Swarm-harness files share one xdist unit."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.scheduling import CLUSTER_SCOPE, check_cluster_tests_are_grouped, scope_of


def test_every_cluster_file_is_one_unit_and_every_other_file_its_own() -> None:
    assert scope_of("tests/swarm/test_swarm_runner.py::test_a") == CLUSTER_SCOPE
    assert scope_of("tests/cluster/test_harness.py::test_b[x]") == CLUSTER_SCOPE
    assert scope_of("tests/dynos/test_images.py::test_c") == CLUSTER_SCOPE
    assert scope_of("tests/dynos/test_output.py::test_d") == "tests/dynos/test_output.py"
    assert scope_of("tests/api/test_apps.py::TestX::test_e") == "tests/api/test_apps.py"


@dataclass
class CollectedItem:  # the two things the check reads of a pytest item
    nodeid: str
    swarm: bool

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "swarm" and self.swarm else None


def test_a_swarm_test_outside_the_shared_unit_fails_the_collection() -> None:
    grouped = [CollectedItem("tests/swarm/test_new.py::test_a", True),
               CollectedItem("tests/api/test_apps.py::test_b", False)]
    check_cluster_tests_are_grouped(grouped)  # type: ignore[arg-type]
    with pytest.raises(pytest.UsageError, match="tests/api/test_swarmy.py"):
        check_cluster_tests_are_grouped([*grouped, CollectedItem("tests/api/test_swarmy.py::test_c", True)])  # type: ignore[list-item]
