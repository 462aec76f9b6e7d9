"""A managed backend killed while add-ons are being provisioned: every add-on ends `provisioned`
(a retried success) or failed, and nothing is orphaned — the server holds exactly the databases
and roles of the provisioned add-ons, and each of those works."""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from berth.addons import resources
from berth.addons.postgres import embedded
from berth.broker.models import Operation
from berth.config import Settings
from tests.builtin_platform import builtin_platform, server_database

pytestmark = pytest.mark.slow

PROVISIONS = 16
KILLS = 4  # SIGKILLs of the postmaster, at random moments while the provisions run


def _postmaster_pid(settings: Settings) -> int | None:
    try:
        return int((embedded.root(settings) / "cluster" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def test_killing_the_embedded_postgres_while_provisioning_orphans_nothing(tmp_path: Path) -> None:
    with builtin_platform(tmp_path, None, "crash@example.com", RETRY_BASE_SECONDS="0.2") as platform:
        settings, database = server_database(platform.server)
        for app in ("crash-a", "crash-b"):
            assert platform.call("POST", "/apps", name=app).status_code == 201
        first = platform.provision("crash-a", "postgresql")  # the cluster is up
        assert first["state"] == "provisioned"

        stop, kills = threading.Event(), []

        def killer() -> None:
            chance = random.Random(7)
            while len(kills) < KILLS and not stop.wait(chance.uniform(0.2, 1.0)):
                pid = _postmaster_pid(settings)
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        kills.append(pid)
                    except ProcessLookupError:
                        pass
        thread = threading.Thread(target=killer)
        thread.start()
        try:
            addons = [platform.provision(f"crash-{'ab'[n % 2]}", "postgresql") for n in range(PROVISIONS)]
        finally:
            stop.set()
            thread.join()
        assert kills, "the cluster was never killed: the test proved nothing"

        embedded.ensure_embedded(settings)  # as the backends supervisor would
        deadline = time.monotonic() + 180  # failed provisions' clean-up deprovisions, retried until done (slow under load)
        while True:
            with database.session(write=False) as session:
                if not session.scalar(select(func.count()).select_from(Operation).where(
                        Operation.state.in_(("pending", "running")))):
                    break
            assert time.monotonic() < deadline, "the failed provisions' clean-up never finished"
            time.sleep(0.5)
        states = {a["id"]: platform.call("GET", f"/addons/{a['id']}").json().get("state", "gone")
                  for a in addons}
        assert set(states.values()) <= {"provisioned", "deprovisioned", "gone"}, states
        provisioned = {addon_id for addon_id, state in states.items() if state == "provisioned"}

        with database.session(write=False) as session:
            live = {r.id: resources.details(r) for r in resources.live(session, "postgresql")}
        assert set(live) == provisioned | {first["id"]}, "the provider holds what Berth does not, or less"
        with psycopg.connect(embedded.ensure_embedded(settings), autocommit=True) as admin:
            databases = {row[0] for row in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'db\\_%'")}
            roles = {row[0] for row in admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'u\\_%'")}
        assert databases == {d["database"] for d in live.values()}, "a database nobody knows of, or one missing"
        assert roles == {d["user"] for d in live.values()}
        for app in ("crash-a", "crash-b"):
            for name, url in platform.config(app).items():
                if name.endswith("_URL"):
                    with psycopg.connect(url, connect_timeout=5) as connection:
                        assert connection.execute("SELECT 1").fetchone() == (1,)
