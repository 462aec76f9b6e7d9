"""A live Berth with its first-party add-ons, for tests that use them end to end: gunicorn with
the built-in providers, a real PostgreSQL server (the session's) for Postgres add-ons, and a broker
worker process. On the way out, the redis-servers and Kafka broker its add-ons started are stopped."""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import requests

from berth import crypto
from berth.config import Settings, load_settings
from berth.db import Database
from tests.live_server import ROOT, LiveServer, live_server, stop


def server_database(server: LiveServer) -> tuple[Settings, Database]:
    """The live server's settings and control-plane database, readable from the test process."""
    settings = load_settings(server.env)
    crypto.configure(crypto.load_or_create_keys(settings.secret_keys, settings.data_dir))
    return settings, Database(settings.database_url)


@dataclass
class BuiltinPlatform:
    server: LiveServer
    key: str

    def call(self, method: str, path: str, **json: Any) -> requests.Response:
        return self.server.api(method, path, self.key, json=json or None)

    def provision(self, app: str, plan: str, **body: Any) -> dict[str, Any]:
        """Create an add-on and wait until it is no longer `provisioning`."""
        created = self.call("POST", f"/apps/{app}/addons", plan=plan, **body)
        assert created.status_code == 201, created.text
        addon = created.json()
        deadline = time.monotonic() + 60
        while addon["state"] == "provisioning" and time.monotonic() < deadline:
            time.sleep(0.2)
            addon = self.call("GET", f"/addons/{addon['id']}").json()
        return addon

    def config(self, app: str) -> dict[str, str]:
        return self.call("GET", f"/apps/{app}/config-vars").json()


def let_service_accounts_in(base: Path) -> None:
    """Servers run as unprivileged accounts when the tests run as root (`berth.supervise.accounts`):
    they must be able to pass through pytest's directories (made 0700) to reach the data dir."""
    if os.geteuid() != 0:
        return
    for directory in (*Path(base).resolve().parents, Path(base).resolve()):
        mode = directory.stat().st_mode
        if not mode & 0o001 and str(directory).startswith(tempfile.gettempdir() + os.sep):
            directory.chmod(mode | 0o001)  # search only: nothing becomes listable or readable


def wait_for_worker(server: LiveServer, worker: subprocess.Popen[bytes]) -> None:
    """The worker migrates before it listens; until then provisions would stay `provisioning`."""
    sock = Path(server.env["BERTH_DATA_DIR"]) / "run" / f"worker-{worker.pid}.sock"
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert worker.poll() is None, "broker worker exited"
        assert time.monotonic() < deadline, "broker worker not listening after 30 s"
        time.sleep(0.05)


@contextlib.contextmanager
def builtin_platform(base: Path, postgres_admin_url: str | None, email: str, *, tls: bool = False,
                     **settings: str) -> Iterator[BuiltinPlatform]:
    """`postgres_admin_url` None: Postgres add-ons go to an embedded cluster of this server's own.
    `tls`: with the TLS listener too (`LiveServer.tls_url`)."""
    servers = {"POSTGRES_SERVERS": postgres_admin_url} if postgres_admin_url else {}
    let_service_accounts_in(base)
    with live_server(base, workers=2, threads=4, tls=tls, BUILTIN_ADDONS="1", PROVISION_WAIT_SECONDS="10",
                     **servers, **settings) as server:
        worker_log = (base / "worker.log").open("wb")
        worker = subprocess.Popen([sys.executable, "-m", "berth.worker"], cwd=ROOT, env=server.env,
                                  stdout=worker_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_worker(server, worker)
            yield BuiltinPlatform(server, server.create_user(email))
        finally:
            stop(worker)
            worker_log.close()
            _stop_backends(server)


def _stop_backends(server: LiveServer) -> None:
    from berth.addons.kafka import broker as kafka_broker
    from berth.addons.postgres import embedded
    from berth.addons.redis import instances

    settings, database = server_database(server)
    instances.stop_all(settings, database)
    kafka_broker.stop(settings)
    embedded.stop(settings)
    database.dispose()
