"""The installation secret file: made once, private, and the same for every process that races."""
from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from berth.crypto import installation_secret

ROOT = Path(__file__).resolve().parents[2]


def test_made_once_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "session.key"
    first = installation_secret(path)
    assert len(first) == 32 and installation_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["session.key"]  # no temporary file left


def test_racing_processes_all_get_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "providers.key"
    code = ("import sys; from pathlib import Path; from berth.crypto import installation_secret; "
            "sys.stdout.write(installation_secret(Path(sys.argv[1])).hex())")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True) for _ in range(8)]
    seen = {racer.communicate(timeout=60)[0] for racer in racers}
    assert len(seen) == 1 and len(seen.pop()) == 64
