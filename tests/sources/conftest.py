"""Sources keep no rows (their records are files beside the blob): one control-plane backend is enough."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def database_url(session_dir: Path) -> str:
    return f"sqlite:///{session_dir / 'control-plane.sqlite3'}"
