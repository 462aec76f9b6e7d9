"""BERTH_PYTHONS_DIR: checked when the builder sets up its runner, with a message saying what to do."""
from __future__ import annotations

from pathlib import Path

import pytest

from berth.platform.buildpack_runner.pythons import PYTHONS_TARGET, language_binds, pythons_dir


def test_unset_means_the_stacks_cpython_only() -> None:
    assert pythons_dir({}) is None and pythons_dir({"BERTH_PYTHONS_DIR": " "}) is None
    assert language_binds(None) == []


def test_a_readable_directory_is_bound_read_only_at_opt(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    [bind] = language_binds(pythons_dir({"BERTH_PYTHONS_DIR": str(tmp_path)}))
    assert (bind.source, bind.target, bind.writable) == (tmp_path, PYTHONS_TARGET, False)


@pytest.mark.parametrize("value, says", [("relative/dir", "absolute path"), ("/no/such/dir", "absolute path"),
                                         ("PRIVATE", "readable by everyone")])
def test_a_bad_setting_is_refused_saying_what_to_do(tmp_path: Path, value: str, says: str) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(ValueError, match=says):
        pythons_dir({"BERTH_PYTHONS_DIR": str(private) if value == "PRIVATE" else value})
