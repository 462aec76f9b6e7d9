"""`make run`'s supervisor (`python -m berth.serve`): gunicorn and the worker, kept running."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.live_server import ACCEPT, ROOT, LiveServer, clean_env, free_port, stop, wait_until_answering
from tests.partners.harness import run_example_partner


def _worker_of(supervisor: psutil.Process) -> psutil.Process:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for child in supervisor.children():
            if "berth.broker.worker" in child.cmdline():
                return child
        time.sleep(0.1)
    raise AssertionError("no worker process under the supervisor")


def _provision(server: LiveServer, key: str, app: str) -> dict[str, object]:
    answer = server.api("POST", f"/apps/{app}/addons", key, json={"plan": "example-partner"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_serve_runs_the_api_and_a_worker_and_restarts_a_dead_worker(tmp_path: Path) -> None:
    port = free_port()
    env = {**clean_env(), "BERTH_DATA_DIR": str(tmp_path / "data"), "BERTH_HOST": "127.0.0.1",
           "BERTH_PORT": str(port), "BERTH_WEB_THREADS": "4",
           "BERTH_ALLOW_PRIVATE_TARGETS": "1"}  # the example partner listens on loopback
    server = LiveServer(f"http://127.0.0.1:{port}", env, tmp_path / "serve.log")
    with run_example_partner(tmp_path) as partner, server.log.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "berth.serve"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_until_answering(server.url + "/openapi.json", process, server.log)
            manifest = tmp_path / "manifest.json"
            manifest.write_text(json.dumps(partner.manifest(requires=("many_per_app",))))
            subprocess.run([sys.executable, "-m", "berth.admin", "register-addon", str(manifest)],
                           cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
            key = server.create_user("serve@example.com")
            assert server.api("POST", "/apps", key, json={"name": "served"}).status_code == 201

            # A quick partner: the request waits for the worker's answer and reports it.
            assert _provision(server, key, "served")["state"] == "provisioned"

            supervisor = psutil.Process(process.pid)
            first = _worker_of(supervisor)
            first.kill()
            first.wait(timeout=10)
            second = _worker_of(supervisor)
            assert second.pid != first.pid
            deadline = time.monotonic() + 20
            addon = _provision(server, key, "served")
            while addon["state"] == "provisioning" and time.monotonic() < deadline:
                time.sleep(0.2)
                addon = server.api("GET", f"/addons/{addon['id']}", key).json()
            assert addon["state"] == "provisioned"

            children = supervisor.children(recursive=True)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            gone, alive = psutil.wait_procs(children, timeout=10)
            assert alive == []
            with pytest.raises(requests.ConnectionError):  # nothing answers any more
                requests.get(server.url + "/openapi.json", headers={"Accept": ACCEPT}, timeout=2)
        finally:
            stop(process)
