"""Berth's `platform` package lives inside `berth/`, so it must not shadow the standard library."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_stdlib_platform_works_from_the_repo_root() -> None:
    # A fresh interpreter with the repo root first on sys.path, as `python app.py` has.
    code = "import platform, uuid; print(platform.system()); import berth.platform; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    system, marker = result.stdout.split()
    assert system == "Linux" and marker == "ok"


def test_no_top_level_platform_package() -> None:
    assert not (REPO / "platform").exists()
