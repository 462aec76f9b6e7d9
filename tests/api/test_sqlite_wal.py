"""SQLite: sustained authenticated reads must not keep the WAL from being checkpointed."""
from __future__ import annotations

from pathlib import Path

from berth import create_app
from berth.config import Settings
from tests.conftest import TEST_KEY, Api


def test_wal_stays_bounded_under_many_authenticated_reads(tmp_path: Path) -> None:
    database_file = tmp_path / "control-plane.sqlite3"
    app = create_app(Settings(data_dir=tmp_path, database_url=f"sqlite:///{database_file}",
                              secret_keys=(TEST_KEY,)))
    api = Api(app)
    alice = api.make_user("alice@example.com")
    api.post("/apps", alice, json={"name": "busy"})
    api.patch("/apps/busy/config-vars", alice, json={f"V{i}": "x" * 40 for i in range(10)})
    for _ in range(3000):  # each one spends a rate-limit token: a committed write
        assert api.get("/apps/busy/config-vars", alice).status_code == 200
    # Each write appends a page or two; without checkpoints 3000 of them pass 12 MB.
    # SQLite's automatic checkpoint restarts the log at about 1000 pages (4 MB).
    wal = database_file.with_name(database_file.name + "-wal")
    assert wal.stat().st_size < 6 * 1024 * 1024
    app.extensions["berth.database"].dispose()
