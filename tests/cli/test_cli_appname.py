"""App resolution without -a: a `.berth` file, then the `berth` git remote."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine


def test_app_from_berth_file_in_a_parent(berth: Berth, app_name: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    nested = project / "src" / "deep"
    nested.mkdir(parents=True)
    (project / ".berth").write_text(f"\n  {app_name}  \nignored\n")
    result = berth("apps:info", cwd=nested)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"=== {app_name}\n")


def test_app_option_wins_over_berth_file(berth: Berth, app_name: str, tmp_path: Path,
                                         one_error_line: ErrorLine) -> None:
    (tmp_path / ".berth").write_text(f"{app_name}\n")
    assert one_error_line(berth("apps:info", "-a", "no-such-app-here", cwd=tmp_path))


def test_app_from_git_remote(berth: Berth, app_name: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = berth.env()
    for argv in (["git", "init", "-q"], ["git", "remote", "add", "berth", f"https://127.0.0.1:5443/{app_name}.git"]):
        subprocess.run(argv, cwd=repo, env=env, check=True)
    result = berth("config:set", "FROM_GIT=1", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert f"restarting {app_name}... done" in result.stdout
