"""Crash recovery: provisions under load while the worker (and once the web server) is SIGKILLed.

200 provisions at concurrency 8 over HTTP against a real gunicorn; meanwhile the worker process
is killed with SIGKILL 0.3-1.5 s after it has started up and restarted at once, the partner switches between
answering at once and answering after 0.2 s (so kills land mid-call), and the whole web server
(gunicorn master and workers) is SIGKILLed once and restarted on the same port. A final worker
then drains everything. Whatever exists afterwards must be consistent:

- every add-on Berth knows is `provisioned`, or failed (`deprovisioned` with a `failure_message`);
- the partner holds exactly Berth's provisioned add-ons (nothing orphaned, nothing missing);
- every provisioned add-on's attachment var on its app is the partner's config for its uuid,
  and the apps carry no other add-on vars.
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.live_server import ACCEPT, ROOT, LiveServer, clean_env, free_port
from tests.partners.harness import ExamplePartner, run_example_partner

pytestmark = pytest.mark.slow

PROVISIONS = 200
CONCURRENCY = 8
APPS = 8
STARTUP_SECONDS = 0.7
# The load is paced to last this long at least: provisions are quick now, and the chaos needs
# time to kill the worker several times mid-load (about one kill per 1.6 s).
LOAD_SECONDS = 14.0
PARTNER_URL = "https://example-partner.invalid/r/{}"


class Web:
    """gunicorn in its own session, so a crash can take the master and its workers at once."""

    def __init__(self, base: Path, env: dict[str, str], port: int) -> None:
        self.base, self.env, self.port = base, env, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = base / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{self.port}", "app:app"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                requests.get(self.url + "/openapi.json", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        pytest.fail(f"gunicorn not answering:\n{self.log.read_text()[-4000:]}")

    def crash(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)  # the master and its workers: a real crash
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Workers:
    """`python -m berth.worker`, one at a time (SQLite), killed and restarted on demand."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.env, self.log = env, base / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "berth.worker"], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Load:
    created: dict[str, str] = field(default_factory=dict)   # add-on id -> app
    failed_requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _provision(url: str, key: str, jobs: list[str], load: Load) -> None:
    session = requests.Session()
    session.headers.update({"Accept": ACCEPT, "Authorization": f"Bearer {key}"})
    started, spacing = time.monotonic(), LOAD_SECONDS / max(1, len(jobs))
    for n, app in enumerate(jobs):
        time.sleep(max(0.0, started + n * spacing - time.monotonic()))
        for _attempt in range(100):  # a request failing while the web server is down is tried again
            try:
                answer = session.post(f"{url}/apps/{app}/addons", json={"plan": "example-partner"}, timeout=30)
            except requests.RequestException as error:
                with load.lock:
                    load.failed_requests.append(f"{app}: {type(error).__name__}")
                time.sleep(0.2)
                continue
            with load.lock:
                if answer.status_code == 201:
                    load.created[answer.json()["id"]] = app
                    break
                load.failed_requests.append(f"{app}: {answer.status_code} {answer.text[:200]}")
            time.sleep(0.2)


def _open_operations(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        return int(connection.execute(
            "SELECT count(*) FROM operations WHERE state IN ('pending', 'running')").fetchone()[0])


def _table_exists(database: Path, name: str) -> bool:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def test_provisions_survive_worker_and_web_crashes(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(int(os.environ.get("BERTH_CRASH_SEED", "0")) or None)
    with run_example_partner(tmp_path) as partner:
        port = free_port()
        env = {**clean_env(), "BERTH_DATA_DIR": str(tmp_path / "data"), "BERTH_HOST": "127.0.0.1",
               "BERTH_PORT": str(port), "BERTH_PROVISION_WAIT_SECONDS": "1", "BERTH_WORKER_THREADS": "8",
               "BERTH_ALLOW_PRIVATE_TARGETS": "1"}  # the partner listens on loopback
        web, workers = Web(tmp_path, env, port), Workers(tmp_path, env)
        web.start()
        try:
            _run(tmp_path, rng, partner, web, workers, env, started)
        finally:
            workers.stop()
            web.stop()


def _run(base: Path, rng: random.Random, partner: ExamplePartner, web: Web, workers: Workers,
         env: dict[str, str], started: float) -> None:
    server = LiveServer(web.url, env, web.log)
    key = server.create_user("crash@example.com")
    manifest = base / "manifest.json"
    manifest.write_text(json.dumps(partner.manifest(requires=("many_per_app",))))
    registered = subprocess.run([sys.executable, "-m", "berth.admin", "register-addon", str(manifest)],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert registered.returncode == 0, registered.stderr
    apps = [f"crash-{i}" for i in range(APPS)]
    for app in apps:
        assert server.api("POST", "/apps", key, json={"name": app}).status_code == 201

    # -- the load, with crashes ---------------------------------------------------------------
    load, done = Load(), threading.Event()
    jobs: list[list[str]] = [[] for _ in range(CONCURRENCY)]
    for n in range(PROVISIONS):
        jobs[n % CONCURRENCY].append(apps[n % APPS])
    clients = [threading.Thread(target=_provision, args=(web.url, key, job, load)) for job in jobs]
    modes: list[str] = []

    def chaos() -> None:
        web_crashed = False
        t0 = time.monotonic()
        workers.start()
        while not done.is_set():
            # ~0.7 s of the worker's life is Python starting up: kill 0.3-1.5 s after that
            done.wait(STARTUP_SECONDS + rng.uniform(0.3, 1.5))
            mode = "slow" if rng.random() < 0.35 else "sync"
            try:
                partner.set_mode(mode, slow_seconds=0.2)
                modes.append(mode)
            except Exception:  # noqa: BLE001 -- a busy partner: keep the old mode
                pass
            workers.kill()
            workers.start()  # at once
            if not web_crashed and time.monotonic() - t0 > 4:
                web_crashed = True
                web.crash()
                time.sleep(0.3)
                web.start()

    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=120)
    load_seconds = time.monotonic() - started
    done.set()
    chaos_thread.join(timeout=60)
    assert not chaos_thread.is_alive()
    assert all(not c.is_alive() for c in clients)

    # -- a final worker drains everything -----------------------------------------------------
    partner.set_mode("sync")
    workers.stop()
    workers.start()
    database = base / "data" / "berth.sqlite3"
    assert _table_exists(database, "operations")
    deadline = time.monotonic() + 40
    while _open_operations(database) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _open_operations(database)
    assert left == 0, f"{left} operations still open after the drain:\n{workers.log.read_text()[-3000:]}"

    # -- what Berth knows ---------------------------------------------------------------------
    session = requests.Session()
    session.headers.update({"Accept": ACCEPT, "Authorization": f"Bearer {key}"})
    listed = session.get(f"{web.url}/addons", headers={"Range": "id ..; max=1000"}, timeout=30)
    assert listed.status_code == 200, listed.text
    known: dict[str, dict[str, Any]] = {a["id"]: a for a in listed.json()}
    for addon_id in load.created:
        if addon_id not in known:  # failed ones are not listed but stay readable
            answer = session.get(f"{web.url}/addons/{addon_id}", timeout=30)
            assert answer.status_code == 200, f"{addon_id} returned by a POST is gone: {answer.text}"
            known[addon_id] = answer.json()
        else:
            answer = session.get(f"{web.url}/addons/{addon_id}", timeout=30)
            assert answer.status_code == 200 and answer.json()["state"] == known[addon_id]["state"]

    bad = {i: (a["state"], a.get("failure_message")) for i, a in known.items()
           if not (a["state"] == "provisioned" or (a["state"] == "deprovisioned" and a.get("failure_message")))}
    assert not bad, f"add-ons not settled: {bad}"
    provisioned = {i for i, a in known.items() if a["state"] == "provisioned"}
    failed = set(known) - provisioned

    # -- what the partner holds: exactly the provisioned ones ---------------------------------
    resources = partner.state()["resources"]
    held = {uuid for uuid, r in resources.items() if r["state"] == "provisioned"}
    assert held - provisioned == set(), f"orphaned at the partner: {sorted(held - provisioned)}"
    assert provisioned - held == set(), f"provisioned in Berth, unknown to the partner: {sorted(provisioned - held)}"

    # -- config vars: each attachment's var is the partner's config; nothing else -------------
    expected: dict[str, dict[str, str]] = {app: {} for app in apps}
    for addon_id in provisioned:
        addon = known[addon_id]
        names = addon["config_vars"]
        assert len(names) == 1 and names[0].endswith("_URL"), addon
        assert resources[addon_id]["config"]["EXAMPLE_URL"] == PARTNER_URL.format(addon_id)
        expected[addon["app"]["name"]][names[0]] = PARTNER_URL.format(addon_id)
    for app in apps:
        config = session.get(f"{web.url}/apps/{app}/config-vars", timeout=30).json()
        addon_vars = {k: v for k, v in config.items() if k.startswith("EXAMPLE")}
        assert addon_vars == expected[app], f"{app}: config vars differ from its add-ons"

    total = time.monotonic() - started
    print(f"\ncrash test: {len(load.created)} created by 201, {len(load.failed_requests)} requests failed "
          f"({sorted(set(f.split(': ', 1)[1][:40] for f in load.failed_requests))}), "
          f"{len(known)} add-ons known: {len(provisioned)} provisioned, {len(failed)} failed; "
          f"{workers.kills} worker kills, 1 web crash; modes {modes.count('slow')} slow / "
          f"{modes.count('sync')} sync; load {load_seconds:.1f} s, total {total:.1f} s")
    assert workers.kills >= 5
    assert len(provisioned) >= PROVISIONS // 2
