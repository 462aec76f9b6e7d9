"""Which cgroup hierarchy carries the memory controller, read from a mount table like the kernel's."""
from __future__ import annotations

from pathlib import Path

from berth.supervise.cgroups import find_memory_hierarchy

V1_MEMORY = "35 28 0:30 / {root}/memory rw,nosuid - cgroup cgroup rw,memory\n"
V2 = "30 28 0:26 / {root}/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def mount_table(tmp_path: Path, *lines: str, v2_controllers: str) -> Path:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text(v2_controllers)
    table = tmp_path / "mountinfo"
    table.write_text("".join(line.format(root=tmp_path) for line in lines))
    return table


def test_hybrid_hosts_use_v1_memory_since_their_v2_hierarchy_has_no_controllers(tmp_path: Path) -> None:
    found = find_memory_hierarchy(mount_table(tmp_path, V2, V1_MEMORY, v2_controllers=""))
    assert found is not None and (found.version, found.mount) == (1, tmp_path / "memory")


def test_a_v2_hierarchy_with_the_memory_controller_wins(tmp_path: Path) -> None:
    found = find_memory_hierarchy(mount_table(tmp_path, V1_MEMORY, V2, v2_controllers="cpuset cpu io memory pids"))
    assert found is not None and (found.version, found.mount) == (2, tmp_path / "unified")


def test_no_memory_controller_anywhere_is_none(tmp_path: Path) -> None:
    assert find_memory_hierarchy(mount_table(tmp_path, V2, v2_controllers="cpu io")) is None

