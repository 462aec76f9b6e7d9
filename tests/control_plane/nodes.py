"""Control-plane nodes for tests: each `python -m berth.serve` (web, worker, builder, runner, …) with a
data dir and ports of its own, over one real PostgreSQL database. A node dies by SIGKILL to its whole
process group (the supervisor and every process it started), as a machine would.

What the nodes share besides the database: the secrets (BERTH_SECRET_KEYS, BERTH_CA_CERT/KEY) and the
slug store (each data dir's `slugs` is a link to one directory: slugs are machine-local files unless
an S3 store is configured), so a release cut on one node runs on the other. Sources and build output
stay each node's own.

Starting a node costs some ten Python processes' imports and schema checks, so nodes start (and are
torn down) side by side, and tests restart a killed node only where they must.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import psutil
import requests
from sqlalchemy import select, text

from berth import certificates
from berth.db import Database
from berth.platform.models import Dyno
from berth.platform.runner.ownership import shard_of
from tests.buildpacks.conftest import host_ca_bundle
from tests.conftest import TEST_KEY
from tests.live_server import ACCEPT, ROOT, LiveServer, clean_env, free_port, wait_until_answering
from tests.runner.conftest import eventually

SHARDS = 16


@dataclass
class Node:
    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['BERTH_PORT']}"

    @property
    def router_port(self) -> int:
        return int(self.env["BERTH_ROUTER_PORT"])

    @property
    def data_dir(self) -> Path:
        return Path(self.env["BERTH_DATA_DIR"])

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        """Start the node's processes without waiting for them (see `wait_ready`)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "berth.serve"], cwd=ROOT, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def wait_ready(self) -> None:
        """Until its API answers and its builder listens for pushes."""
        assert self.process is not None
        wait_until_answering(self.url + "/openapi.json", self.process, self.log, timeout=120, what=self.name)
        builder = self.data_dir / "git" / "builder.sock"
        deadline = time.monotonic() + 60
        while not builder.exists():
            assert time.monotonic() < deadline and self.alive, self.log_tail()
            time.sleep(0.1)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def ensure_running(self) -> None:
        if not self.alive:
            self.start()

    def kill(self) -> None:
        """The machine dies: every process of the node at once, with no chance to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def tear_down(self) -> None:
        """The end of a test module: killed (nothing here needs an orderly stop, which costs gunicorn's
        graceful shutdown), then its dynos and router, which outlive it, stopped as `make run` would."""
        if self.alive:
            self.kill()
        subprocess.run([sys.executable, "-m", "berth.runner", "stop-all"], cwd=ROOT, env=self.env,
                       capture_output=True, timeout=180, check=False)

    @contextlib.contextmanager
    def paused(self, *modules: str) -> Iterator[None]:
        """The node's processes running `python -m <module>` stopped (SIGSTOP) meanwhile: a test decides
        which node's worker or builder claims a job. They go on (SIGCONT) afterwards."""
        assert self.process is not None
        found = [child for child in psutil.Process(self.process.pid).children()
                 if any(f"-m {module}" in " ".join(child.cmdline()) for module in modules)]
        assert len(found) == len(modules), [child.cmdline() for child in found]
        for child in found:
            child.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for child in found:
                child.send_signal(signal.SIGCONT)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def log_lines(self, containing: str) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if containing in line]


@dataclass
class TwoNodes:
    a: Node
    b: Node
    key: str
    database: Database
    ca_pem: str
    apps: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> tuple[Node, Node]:
        return self.a, self.b

    def other(self, node: Node) -> Node:
        return self.b if node is self.a else self.a

    def named(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def node_at(self, url: str) -> Node:
        return next(node for node in self.nodes if url.startswith(node.url))

    def call(self, node: Node, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, node.url + path, json=body, timeout=30,
                                headers={"Accept": ACCEPT, "Authorization": f"Bearer {self.key}"})

    def make_app(self, node: Node, prefix: str) -> dict[str, Any]:
        made = self.call(node, "POST", "/apps", {"name": f"{prefix}-{uuid.uuid4().hex[:6]}"})
        assert made.status_code == 201, made.text
        return made.json()

    def app_held_by(self, holder: Node, through: Node, prefix: str) -> dict[str, Any]:
        """A new app (made through `through`) of a shard `holder`'s runner holds."""
        return eventually(lambda: (made := self.make_app(through, prefix)) and self.holder_of(made["id"]) == holder.name
                          and made, 30, f"an app {holder.name} owns")

    def holder_of(self, app_id: str) -> str | None:
        with self.database.write_engine.begin() as connection:
            return connection.execute(text("SELECT holder FROM runner_leases WHERE shard = :shard AND "
                                           "expires_at > timezone('utc', now())"),
                                      {"shard": shard_of(app_id, SHARDS)}).scalar()

    def holders(self) -> set[str | None]:
        """Who holds the shards of 64 app ids (every shard, surely)."""
        return {self.holder_of(str(uuid.UUID(int=n))) for n in range(64)}

    def dynos(self, app_id: str) -> list[Dyno]:
        with self.database.session(write=False) as session:
            return list(session.scalars(select(Dyno).where(Dyno.app_id == app_id).order_by(Dyno.number)))

    def log(self, node: Node, app: str, lines: int = 1500, **filters: str) -> list[str]:
        """The app's log stream, as `heroku logs -n` reads it (`dyno="web"`: not the router's lines)."""
        made = self.call(node, "POST", f"/apps/{app}/log-sessions", {"lines": lines, **filters})
        assert made.status_code == 201, made.text
        return requests.get(made.json()["logplex_url"], timeout=30).text.splitlines()

    def release(self, node: Node, app: str, files: dict[str, str], processes: dict[str, str]) -> dict[str, Any]:
        """A slug of `files` (under /app), uploaded through `node` and released."""
        slug = self.call(node, "POST", f"/apps/{app}/slugs", {"process_types": processes})
        assert slug.status_code == 201, slug.text
        put = requests.put(slug.json()["blob"]["url"], data=app_tarball(files), headers={"Content-Type": ""},
                           timeout=30)
        assert put.status_code == 200, put.text
        release = self.call(node, "POST", f"/apps/{app}/releases", {"slug": slug.json()["id"]})
        assert release.status_code == 201, release.text
        return release.json()

    def scale(self, node: Node, app: str, **quantities: int) -> None:
        answer = self.call(node, "PATCH", f"/apps/{app}/formation",
                           {"updates": [{"type": kind, "quantity": n} for kind, n in quantities.items()]})
        assert answer.status_code == 200, answer.text


def app_tarball(files: dict[str, str]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"app/{name}")
            info.size, info.mode = len(body.encode()), 0o755
            tar.addfile(info, io.BytesIO(body.encode()))
    return data.getvalue()


def node_env(base: Path, name: str, database_url: str, ca: certificates.CertificateAuthority,
             **settings: str) -> dict[str, str]:
    """The environment of node `name` (its data dir under `base`, free ports); `settings` become BERTH_*."""
    data_dir = base / name / "data"
    bundle = host_ca_bundle()
    return {**clean_env(), "BERTH_DATA_DIR": str(data_dir), "BERTH_HOST": "127.0.0.1",
            "BERTH_PORT": str(free_port()), "BERTH_TLS_PORT": str(free_port()),
            "BERTH_ROUTER_PORT": str(free_port()), "BERTH_ROUTER_TLS_PORT": str(free_port()),
            "BERTH_RENDEZVOUS_PORT": str(free_port()), "BERTH_NODE_NAME": name,
            "BERTH_DATABASE_URL": database_url, "BERTH_SECRET_KEYS": TEST_KEY,
            "BERTH_CA_CERT": str(ca.cert_path), "BERTH_CA_KEY": str(ca.directory / "ca.key"),
            "BERTH_BUILTIN_ADDONS": "0", "BERTH_ALLOW_PRIVATE_TARGETS": "1", "BERTH_RUNNER_SHARDS": str(SHARDS),
            "BERTH_WEB_WORKERS": "1", "BERTH_WEB_THREADS": "4", "BERTH_WORKER_THREADS": "2",
            **({"BERTH_BUILD_CA_BUNDLE": str(bundle)} if bundle is not None else {}),
            **{f"BERTH_{key}": value for key, value in settings.items()}}


def side_by_side(nodes: Iterable[Node], action: Callable[[Node], None]) -> None:
    """`action` on every node at once (each mostly waits on its processes); the first failure raised."""
    nodes = list(nodes)
    with ThreadPoolExecutor(len(nodes)) as pool:
        for done in [pool.submit(action, node) for node in nodes]:
            done.result()


@contextlib.contextmanager
def two_nodes(base: Path, database_url: str, *, before_ready: Callable[[Node], None] | None = None,
              **settings: str) -> Iterator[TwoNodes]:
    """node-a and node-b over `database_url`, started side by side; torn down side by side. The key
    is a user's made meanwhile; `before_ready(node_a)` runs while they start (another admin step)."""
    ca = certificates.load_or_create(base / "operator-ca", "Two nodes' CA")
    shared_slugs = base / "shared-slugs"
    shared_slugs.mkdir(mode=0o700)
    nodes = []
    for name in ("node-a", "node-b"):
        env = node_env(base, name, database_url, ca, **settings)
        Path(env["BERTH_DATA_DIR"]).mkdir(parents=True, mode=0o700)
        (Path(env["BERTH_DATA_DIR"]) / "slugs").symlink_to(shared_slugs)
        nodes.append(Node(name, env, base / name / "serve.log"))
    database = Database(database_url)
    try:
        for node in nodes:
            node.launch()
        with ThreadPoolExecutor(2) as pool:  # the admin steps migrate and write alone: no node needed
            key = pool.submit(LiveServer(nodes[0].url, nodes[0].env, nodes[0].log).create_user, "nodes@example.com")
            admin = pool.submit(before_ready, nodes[0]) if before_ready is not None else None
            side_by_side(nodes, Node.wait_ready)
            if admin is not None:
                admin.result()
            made_key = key.result()
        yield TwoNodes(nodes[0], nodes[1], made_key, database, ca.cert_pem)
    finally:
        side_by_side(nodes, Node.tear_down)
        database.dispose()
