"""A real Berth server in its own process, for tests that speak HTTP (CLIs, clients, browsers)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
ACCEPT = "application/vnd.heroku+json; version=3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment minus the developer's own Berth and netrc settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "NETRC"))}


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    log: Path
    tls_url: str | None = None  # https://127.0.0.1:<port> when started with tls=True

    def create_user(self, email: str, password: str | None = None) -> str:
        """`python -m berth.admin create-user`; returns the API key it prints (and only that)."""
        argv = [sys.executable, "-m", "berth.admin", "create-user", email]
        if password is not None:
            argv += ["--password", password]
        made = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        assert key and made.stdout == key + "\n", f"expected only the key on stdout: {made.stdout!r}"
        return key

    def api(self, method: str, path: str, token: str, *, headers: dict[str, str] | None = None,
            json: Any = None) -> requests.Response:
        """A direct call, to set up or check state independently of the client under test."""
        sent = {"Accept": ACCEPT, "Authorization": f"Bearer {token}", **(headers or {})}
        return requests.request(method, self.url + path, headers=sent, json=json, timeout=30)


@contextlib.contextmanager
def live_server(base: Path, *, workers: int | None = 2, threads: int | None = None, tls: bool = False,
                **settings: str) -> Iterator[LiveServer]:
    """gunicorn with `workers` processes (sync, or gthread with `threads`), or `python app.py`
    when workers is None. With `tls`, also the TLS listener exactly as `make run` starts it
    (`berth.serve.tls_web_command`), on a port of its own.

    `settings` become BERTH_* variables (e.g. RATE_LIMIT_PER_HOUR="2").
    """
    port, tls_port = free_port(), free_port()
    env = {**clean_env(), "BERTH_DATA_DIR": str(base / "data"), "BERTH_HOST": "127.0.0.1",
           "BERTH_PORT": str(port), "BERTH_TLS_PORT": str(tls_port),
           "BERTH_BUILTIN_ADDONS": "0",  # tests that want them say so
           "BERTH_ALLOW_PRIVATE_TARGETS": "1",  # test partners and drains listen on loopback
           **{f"BERTH_{k}": v for k, v in settings.items()}}
    argv = ([sys.executable, "app.py"] if workers is None else
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "app:app",
             *(["--worker-class", "gthread", "--threads", str(threads)] if threads else [])])
    server = LiveServer(f"http://127.0.0.1:{port}", env, base / "server.log",
                        f"https://127.0.0.1:{tls_port}" if tls else None)
    processes = []
    with server.log.open("wb") as log:
        processes.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        wait_until_answering(server.url + "/openapi.json", processes[0], server.log)
        if tls:
            from berth.config import load_settings
            from berth.serve import tls_web_command

            with (base / "tls-server.log").open("wb") as log:
                processes.append(subprocess.Popen(tls_web_command(load_settings(env)), cwd=ROOT, env=env,
                                                  stdout=log, stderr=subprocess.STDOUT))
            wait_for_tls(tls_port, processes[1], base / "tls-server.log")
        yield server
    finally:
        for process in processes:
            stop(process)


def wait_for_tls(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"TLS listener exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"TLS listener not answering after {timeout} s")


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60,
                         what: str = "server") -> None:
    """Until `url` answers at all (any status), failing the test if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.05)
    pytest.fail(f"{what} not answering after {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
