"""A live Berth with its builder and its runner process (real dynos in the sandbox, the real nginx
router on free ports), started once per module; tests isolate themselves by app."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from sqlalchemy import select

from berth.db import Database
from berth.platform.models import Dyno
from tests.builds.conftest import BuildPlatform, build_platform
from tests.live_server import ROOT, free_port, stop
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

# The web process of the test slugs: answers who it is (dyno, release config, pid) and can crash.
SERVER = r'''
import http.server, json, os, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the router's upstream connections are
    disable_nagle_algorithm = True  # headers and body go in two writes: no delayed-ACK stall between

    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.rsplit("/", 1)[1]))
        body = json.dumps({"dyno": os.environ.get("DYNO"), "greeting": os.environ.get("GREETING"),
                           "pid": os.getpid(), "version": os.environ.get("SLUG_VERSION")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

print(f"listening on {os.environ['PORT']}", flush=True)
Server(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
'''


@dataclass
class RunPlatform:
    built: BuildPlatform
    router_port: int
    runner: subprocess.Popen[bytes] | None = None
    runner_logs: list[Path] = field(default_factory=list)
    _database: Database | None = None

    @property
    def env(self) -> dict[str, str]:
        return self.built.server.env

    def call(self, method: str, path: str, json: Any = None) -> requests.Response:
        return self.built.call(method, path, json)

    def start_runner(self) -> None:
        log = self.built.server.log.with_name(f"runner-{len(self.runner_logs)}.log")
        self.runner_logs.append(log)
        with log.open("wb") as out:
            self.runner = subprocess.Popen([sys.executable, "-m", "berth.runner"], cwd=ROOT, env=self.env,
                                           stdout=out, stderr=subprocess.STDOUT)

    def stop_runner(self) -> None:
        if self.runner is not None:
            stop(self.runner, timeout=60)
            self.runner = None

    def runner_log(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.runner_logs if log.exists())

    def deploy(self, app: str, *, processes: dict[str, str] | None = None, version: str = "1",
               files: dict[str, str] | None = None) -> dict[str, Any]:
        """A slug made here (the test web server, plus `files`), released through the API."""
        processes = processes or {"web": "python3 server.py"}
        slug = self.call("POST", f"/apps/{app}/slugs", {"process_types": processes})
        assert slug.status_code == 201, slug.text
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as tar:
            for name, text in {"server.py": SERVER, ".profile.d/version.sh": f"export SLUG_VERSION={version}\n",
                               **(files or {})}.items():
                info = tarfile.TarInfo(f"app/{name}")
                info.size, info.mode = len(text.encode()), 0o755
                tar.addfile(info, io.BytesIO(text.encode()))
        put = requests.put(slug.json()["blob"]["url"], data=data.getvalue(), headers={"Content-Type": ""}, timeout=30)
        assert put.status_code == 200, put.text
        release = self.call("POST", f"/apps/{app}/releases", {"slug": slug.json()["id"]})
        assert release.status_code == 201, release.text
        return release.json()

    def scale(self, app: str, **quantities: int) -> None:
        answer = self.call("PATCH", f"/apps/{app}/formation",
                           {"updates": [{"type": kind, "quantity": n} for kind, n in quantities.items()]})
        assert answer.status_code == 200, answer.text

    def dynos(self, app: str) -> list[Dyno]:
        """The app's rows in `dynos`, as the runner wrote them."""
        if self._database is None:
            self._database = Database(self.env.get("BERTH_DATABASE_URL")
                                      or f"sqlite:///{Path(self.env['BERTH_DATA_DIR']) / 'berth.sqlite3'}")
        app_id = self.call("GET", f"/apps/{app}").json()["id"]
        with self._database.session(write=False) as session:
            rows = list(session.scalars(select(Dyno).where(Dyno.app_id == app_id).order_by(Dyno.type, Dyno.number)))
            session.expunge_all()
            return rows

    def get(self, app: str, path: str = "/", timeout: float = 10) -> requests.Response:
        return through_router(self.router_port, app, path, timeout)

    def log(self, app: str, lines: int = 1500, **filters: str) -> list[str]:
        """The app's log stream, as `heroku logs -n` reads it."""
        made = self.call("POST", f"/apps/{app}/log-sessions", {"lines": lines, **filters})
        assert made.status_code == 201, made.text
        return requests.get(made.json()["logplex_url"], timeout=30).text.splitlines()

    def status(self, app: str, path: str = "/") -> int:
        """The router's answer's status; 0 while nothing listens on its port yet."""
        try:
            return self.get(app, path).status_code
        except requests.ConnectionError:
            return 0

    def answer(self, app: str) -> dict[str, Any] | None:
        """What a dyno answered through the router (its DYNO, config, pid); None for an answer of the
        router's own (H14 while a single dyno restarts, say)."""
        try:
            answer = self.get(app)
        except requests.ConnectionError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def served_by(self, app: str, tries: int = 60) -> set[str]:
        return served_by(self.router_port, app, tries)


class Routed(Protocol):
    """Whatever has a router in front of its dynos (a platform, a control-plane node)."""

    @property
    def router_port(self) -> int: ...


def through_router(router_port: int, app: str, path: str = "/", timeout: float = 10) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{router_port}{path}", headers={"Host": f"{app}.localhost"},
                        timeout=timeout)


def served_by(router_port: int, app: str, tries: int = 60) -> set[str]:
    """The dynos that answered `tries` requests through the router, each on a new connection; empty
    unless every one was answered by a dyno (so a wait on it ends once a routing change has settled:
    until then, a retiring nginx worker may still answer by the table before)."""
    seen = set()
    for _ in range(tries):
        try:
            answer = through_router(router_port, app)
        except requests.ConnectionError:
            return set()
        if answer.status_code != 200:
            return set()
        seen.add(answer.json()["dyno"])
    return seen


def eventually(check: Callable[[], Any], timeout: float = 60.0, what: str = "the condition",
               interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(interval)


def browser_like_session() -> requests.Session:
    """A client that, like browsers and curl (RFC 9112 §9.3.1), sends an idempotent request again
    once when the kept-alive connection it reused is closed before any answer: nginx closes idle
    client connections of the workers a reload retires, and a request can cross that close."""
    session = requests.Session()
    retry = Retry(total=1, connect=0, read=1, status=0, other=0, allowed_methods=["GET"], raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


class Load:
    """Steady requests through the router on a thread: every answer's status (and who served it)."""

    def __init__(self, platform: Routed, app: str, path: str = "/") -> None:
        self.platform, self.app, self.path = platform, app, path
        self.results: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = browser_like_session()
        while not self._stop.is_set():
            try:
                answer = session.get(f"http://127.0.0.1:{self.platform.router_port}{self.path}",
                                     headers={"Host": f"{self.app}.localhost"}, timeout=30)
                body = answer.json() if answer.status_code == 200 else {}
                self.results.append((answer.status_code, json.dumps(body)))
            except requests.RequestException as exc:
                self.results.append((0, str(exc)))
            time.sleep(0.01)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def failures(self) -> list[tuple[int, str]]:
        return [result for result in self.results if result[0] != 200]


def deploy_under_load(platform: RunPlatform, app: str, timeout: float = 90) -> Load:
    """Deploy version 2 of the test slug while requests run; returns once only it serves (and the app
    has as many dynos as before), with every request's result. Version 1 must be serving."""
    dynos = len(platform.dynos(app))
    with Load(platform, app) as load:
        platform.deploy(app, version="2")
        eventually(lambda: all('"version": "2"' in body for _, body in load.results[-20:])
                   and len(platform.dynos(app)) == dynos, timeout=timeout, what="only the new release serving")
    versions = [body for _, body in load.results]
    assert any('"version": "1"' in body for body in versions) and any('"version": "2"' in body for body in versions)
    return load


@contextlib.contextmanager
def running_platform(base: Path, router_port: int, **settings: str) -> Iterator[RunPlatform]:
    """A live Berth, its builder and its runner (the router on `router_port`); every dyno and the
    router stopped on the way out."""
    with build_platform(base, ROUTER_PORT=str(router_port), ROUTER_TLS_PORT=str(free_port()),
                        **settings) as built:
        platform = RunPlatform(built, router_port)
        platform.start_runner()
        try:
            yield platform
        finally:
            platform.stop_runner()
            subprocess.run([sys.executable, "-m", "berth.runner", "stop-all"], cwd=ROOT, env=platform.env,
                           timeout=120, check=False)


@pytest.fixture(scope="module")
def run_platform(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPlatform]:  # noqa: F811
    with running_platform(tmp_path_factory.mktemp("runner"), free_port(), CRASH_COOL_OFF_SECONDS="1",
                          DYNO_BOOT_TIMEOUT_SECONDS="3") as platform:
        yield platform
