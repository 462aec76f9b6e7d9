"""The data dir holds the control plane's secrets (key file, SQLite database with hashed keys and
encrypted config): it is 0700 and the database files 0600, however lax the umask, and a data
dir or database left readable by an older Berth is tightened when Berth starts."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from cryptography.fernet import Fernet

from berth import create_app
from berth.config import Settings
from tests.live_server import ROOT, clean_env

DATABASE = "berth.sqlite3"


@pytest.fixture
def lax_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start(data_dir: Path) -> None:
    """create_app as the web process runs it, a write, and the app disposed of."""
    app = create_app(Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / DATABASE}",
                              secret_keys=(Fernet.generate_key().decode(),), builtin_addons=False))
    try:
        client = app.test_client()
        assert client.get("/openapi.json").status_code == 200
        with app.extensions["berth.database"].transaction() as session:
            from berth.accounts import create_account
            create_account(session, "perm@example.com")
        for suffix in ("-wal", "-shm"):  # exist while connections are open
            found = data_dir / (DATABASE + suffix)
            assert found.exists() and mode(found) == 0o600, (found, oct(mode(found)))
    finally:
        app.extensions["berth.database"].dispose()


def test_a_new_data_dir_and_database_are_private(tmp_path: Path, lax_umask: None) -> None:
    data_dir = tmp_path / "new" / "data"
    start(data_dir)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / DATABASE) == 0o600


def test_a_readable_data_dir_and_database_are_tightened_on_start(tmp_path: Path, lax_umask: None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    (data_dir / DATABASE).touch(mode=0o644)
    for suffix in ("-wal", "-shm"):
        (data_dir / (DATABASE + suffix)).touch(mode=0o666)
    os.chmod(data_dir, 0o755)
    start(data_dir)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / DATABASE) == 0o600


def test_a_worker_process_started_first_makes_the_data_dir_private(tmp_path: Path) -> None:
    """Workers (berth.process) may start before the web process and create the data dir."""
    data_dir = tmp_path / "worker-data"
    code = ("import os; os.umask(0o022)\n"
            "from berth.process import start_process\n"
            "settings, database, _stop = start_process(); database.dispose()\n")
    env = {**clean_env(), "BERTH_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / DATABASE) == 0o600


def test_search_permission_granted_to_service_accounts_is_kept(tmp_path: Path) -> None:
    """The backends give their service accounts search (x) permission on the data dir so they
    can reach their own directories: that is not a readable dir, and stays."""
    from berth.config import prepare_data_dir

    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    os.chmod(data_dir, 0o711)
    prepare_data_dir(data_dir)
    assert mode(data_dir) == 0o711
