"""`make run`'s supervisor (`python -m berth.serve`): gunicorn and the worker, kept running."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest
import requests

from berth.supervise.ports import listening
from berth.supervise.readiness import wait_until

from tests.live_server import ACCEPT, ROOT, LiveServer, clean_env, free_port, stop, wait_until_answering
from tests.partners.harness import run_example_partner


def _worker_of(supervisor: psutil.Process) -> psutil.Process:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for child in supervisor.children():
            if "berth.worker" in child.cmdline():
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
           "BERTH_PORT": str(port), "BERTH_TLS_PORT": str(free_port()), "BERTH_WEB_THREADS": "4",
           "BERTH_ALLOW_PRIVATE_TARGETS": "1",  # the example partner listens on loopback
           "BERTH_ROUTER_PORT": str(free_port()), "BERTH_ROUTER_TLS_PORT": str(free_port()),
           "BERTH_RENDEZVOUS_PORT": str(free_port())}
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

            router = int(env["BERTH_ROUTER_PORT"])  # the runner's nginx, for the apps' web dynos
            assert wait_until(lambda: listening("127.0.0.1", router), 60), server.log.read_text(errors="replace")
            children = supervisor.children(recursive=True)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            gone, alive = psutil.wait_procs(children, timeout=10)
            assert alive == []
            assert not listening("127.0.0.1", router)  # the router stopped with the rest
            with pytest.raises(requests.ConnectionError):  # nothing answers any more
                requests.get(server.url + "/openapi.json", headers={"Accept": ACCEPT}, timeout=2)
        finally:
            stop(process)


# ---- the web process as `make run` starts it: gunicorn with Berth's worker class ----------------

@pytest.fixture(scope="module")
def served_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """`berth.serve`'s web command alone, with a HOME of its own: (port, HOME)."""
    from berth.config import load_settings
    from berth.serve import web_command

    base = tmp_path_factory.mktemp("served-web")
    home = base / "home"
    home.mkdir()
    port = free_port()
    env = {**clean_env(), "HOME": str(home), "BERTH_DATA_DIR": str(base / "data"),
           "BERTH_HOST": "127.0.0.1", "BERTH_PORT": str(port), "BERTH_BUILTIN_ADDONS": "0",
           "BERTH_WEB_WORKERS": "1", "BERTH_WEB_THREADS": "2"}
    env.pop("XDG_RUNTIME_DIR", None)
    log = base / "web.log"
    with log.open("wb") as out:
        process = subprocess.Popen(web_command(load_settings(env)), cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/openapi.json", process, log)
        yield port, home
    finally:
        stop(process)


def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends bytes no HTTP library would, reads the whole answer (gunicorn closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("request_bytes, status, error_id", [
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /apps HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
    (b"GET /apps HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n", 400, "bad_request"),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /apps HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
     "request_header_fields_too_large"),
    (b"GET /apps HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(150)) + b"\r\n", 431,
     "request_header_fields_too_large"),
], ids=["bad request line", "bad version", "bad header name", "long request line", "big header",
        "many headers"])
def test_gunicorns_own_errors_are_json_in_herokus_shape(served_web: tuple[int, Path], request_bytes: bytes,
                                                        status: int, error_id: str) -> None:
    port, _home = served_web
    answered, headers, body = raw_exchange(port, request_bytes)
    assert answered == status, body
    assert headers["content-type"] == "application/json" and int(headers["content-length"]) == len(body)
    document = json.loads(body)
    assert document["id"] == error_id and document["message"].endswith("."), document
    assert b"<html" not in body.lower()
    # The server goes on answering.
    assert requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).status_code == 200


def test_the_web_process_makes_no_shared_control_socket(served_web: tuple[int, Path]) -> None:
    _port, home = served_web
    assert not (home / ".gunicorn").exists(), list((home / ".gunicorn").iterdir())
