"""Two control-plane nodes, each `python -m berth.serve` (web, worker, builder, runner, …) with a data
dir and ports of its own, over one real PostgreSQL database. A node dies by SIGKILL to its whole
process group (the supervisor and every process it started), as a machine would: nothing it was
doing is lost, and nothing is done twice.

What the nodes share besides the database: the secrets (BERTH_SECRET_KEYS, BERTH_CA_CERT/KEY) and,
for this test, the slug store (each data dir's `slugs` is a link to one directory: slugs are
machine-local files unless an S3 store is configured), so a release cut on one node runs on the
other. Sources and build output stay each node's own."""
from __future__ import annotations

import io
import json
import os
import socket
import signal
import ssl
import subprocess
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from sqlalchemy import select, text

from berth import certificates
from berth.addons.postgres.cluster import LocalPostgres
from berth.db import Database
from berth.platform.builds.output import output_path
from berth.platform.models import Dyno
from berth.platform.runner.ownership import shard_of
from tests.builds.conftest import SLOW_BUILDPACK, write_slow_buildpack
from tests.buildpacks.conftest import host_ca_bundle
from tests.conftest import TEST_KEY
from tests.live_server import ACCEPT, ROOT, LiveServer, clean_env, free_port, wait_until_answering
from tests.partners.harness import ExamplePartner, run_example_partner
from tests.runner.conftest import SERVER
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow
JOB_LEASE_SECONDS = 3.0
RUNNER_LEASE_SECONDS = 4.0
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
    def data_dir(self) -> Path:
        return Path(self.env["BERTH_DATA_DIR"])

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "berth.serve"], cwd=ROOT, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        wait_until_answering(self.url + "/openapi.json", self.process, self.log, timeout=90, what=self.name)
        builder = self.data_dir / "git" / "builder.sock"  # the builder is up
        deadline = time.monotonic() + 60
        while not builder.exists():
            assert time.monotonic() < deadline and self.alive, self.log.read_text(errors="replace")[-4000:]
            time.sleep(0.1)

    def ensure_running(self) -> None:
        if not self.alive:
            self.start()

    def kill(self) -> None:
        """The machine dies: every process of the node at once, with no chance to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        # a killed node's dynos and router outlive it: stopped as `make run` would on its way out
        subprocess.run([sys.executable, "-m", "berth.runner", "stop-all"], cwd=ROOT, env=self.env,
                       capture_output=True, timeout=180, check=False)


@dataclass
class TwoNodes:
    a: Node
    b: Node
    key: str
    database: Database
    ca_pem: str
    partner: ExamplePartner
    buildpacks: Path
    apps: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> tuple[Node, Node]:
        return self.a, self.b

    def other(self, node: Node) -> Node:
        return self.b if node is self.a else self.a

    def node_at(self, url: str) -> Node:
        return next(node for node in self.nodes if url.startswith(node.url))

    def call(self, node: Node, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, node.url + path, json=body, timeout=30,
                                headers={"Accept": ACCEPT, "Authorization": f"Bearer {self.key}"})

    def make_app(self, node: Node, prefix: str) -> dict[str, Any]:
        made = self.call(node, "POST", "/apps", {"name": f"{prefix}-{uuid.uuid4().hex[:6]}"})
        assert made.status_code == 201, made.text
        return made.json()

    def holder_of(self, app_id: str) -> str | None:
        with self.database.write_engine.begin() as connection:
            return connection.execute(text("SELECT holder FROM runner_leases WHERE shard = :shard AND "
                                           "expires_at > timezone('utc', now())"),
                                      {"shard": shard_of(app_id, SHARDS)}).scalar()

    def dynos(self, app_id: str) -> list[Dyno]:
        with self.database.session(write=False) as session:
            return list(session.scalars(select(Dyno).where(Dyno.app_id == app_id).order_by(Dyno.number)))


def wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} not within {timeout} s")


@pytest.fixture(scope="module")
def two(stack_root: Path, postgres_server: LocalPostgres,  # noqa: F811
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    base = tmp_path_factory.mktemp("two-nodes")
    url = postgres_server.create_database("two_nodes").replace("postgresql://", "postgresql+psycopg://", 1)
    ca = certificates.load_or_create(base / "operator-ca", "Two nodes' CA")
    buildpacks = base / "local-buildpacks"
    write_slow_buildpack(buildpacks)
    shared_slugs = base / "shared-slugs"
    shared_slugs.mkdir(mode=0o700)
    bundle = host_ca_bundle()
    nodes = []
    for name in ("node-a", "node-b"):
        data_dir = base / name / "data"
        data_dir.mkdir(parents=True, mode=0o700)
        (data_dir / "slugs").symlink_to(shared_slugs)
        env = {**clean_env(), "BERTH_DATA_DIR": str(data_dir), "BERTH_HOST": "127.0.0.1",
               "BERTH_PORT": str(free_port()), "BERTH_TLS_PORT": str(free_port()),
               "BERTH_ROUTER_PORT": str(free_port()), "BERTH_ROUTER_TLS_PORT": str(free_port()),
               "BERTH_RENDEZVOUS_PORT": str(free_port()), "BERTH_NODE_NAME": name,
               "BERTH_DATABASE_URL": url, "BERTH_SECRET_KEYS": TEST_KEY,
               "BERTH_CA_CERT": str(ca.cert_path), "BERTH_CA_KEY": str(ca.directory / "ca.key"),
               "BERTH_BUILTIN_ADDONS": "0", "BERTH_ALLOW_PRIVATE_TARGETS": "1",
               "BERTH_PROVISION_WAIT_SECONDS": "0", "BERTH_RETRY_BASE_SECONDS": "0.2",
               "BERTH_JOB_LEASE_SECONDS": str(JOB_LEASE_SECONDS),
               "BERTH_RUNNER_LEASE_SECONDS": str(RUNNER_LEASE_SECONDS), "BERTH_RUNNER_SHARDS": str(SHARDS),
               "BERTH_WEB_WORKERS": "1", "BERTH_WEB_THREADS": "4", "BERTH_WORKER_THREADS": "2",
               "BERTH_LOCAL_BUILDPACK_DIRS": str(buildpacks),
               **({"BERTH_BUILD_CA_BUNDLE": str(bundle)} if bundle is not None else {})}
        nodes.append(Node(name, env, base / name / "serve.log"))
    database = Database(url)
    with run_example_partner(base, "slow", slow_seconds=8) as partner:
        try:
            for node in nodes:
                node.start()
            manifest = base / "manifest.json"
            manifest.write_text(json.dumps(partner.manifest()))
            subprocess.run([sys.executable, "-m", "berth.admin", "register-addon", str(manifest)],
                           cwd=ROOT, env=nodes[0].env, check=True, capture_output=True, timeout=60)
            key = LiveServer(nodes[0].url, nodes[0].env, nodes[0].log).create_user("nodes@example.com")
            yield TwoNodes(nodes[0], nodes[1], key, database, ca.cert_pem, partner, buildpacks)
        finally:
            for node in nodes:
                node.stop()
            database.dispose()


def test_both_nodes_serve_the_configured_ca(two: TwoNodes) -> None:
    for node in two.nodes:
        node.ensure_running()
        served = requests.get(node.url + "/ca.pem", timeout=10)
        assert served.status_code == 200 and served.text == two.ca_pem
        # ... and their TLS listeners present certificates that CA issued, for the same names
        context = ssl.create_default_context(cadata=two.ca_pem)
        with context.wrap_socket(socket.create_connection(
                ("127.0.0.1", int(node.env["BERTH_TLS_PORT"])), timeout=10), server_hostname="localhost") as tls:
            assert tls.version() is not None


def test_a_call_longer_than_the_job_lease_is_made_once_while_its_worker_lives(two: TwoNodes) -> None:
    """The heartbeat renews the running job's lease: the other node's worker never claims it again."""
    for node in two.nodes:
        node.ensure_running()
    two.partner.set_mode("slow", slow_seconds=3 * JOB_LEASE_SECONDS)
    app = two.make_app(two.a, "renewed")
    made = two.call(two.a, "POST", f"/apps/{app['name']}/addons", {"plan": "example-partner:test"})
    assert made.status_code == 201, made.text
    addon = wait(lambda: (found := two.call(two.b, "GET", f"/addons/{made.json()['id']}").json())["state"]
                 != "provisioning" and found, 6 * JOB_LEASE_SECONDS, "the slow provision")
    assert addon["state"] == "provisioned"
    calls = [entry for entry in two.partner.state()["requests"]
             if entry["kind"] == "provision" and (entry["body"] or {}).get("uuid") == addon["id"]]
    assert len(calls) == 1


def test_a_provision_whose_worker_dies_mid_call_completes_on_the_other_node_once(two: TwoNodes) -> None:
    for node in two.nodes:
        node.ensure_running()
    two.partner.set_mode("slow", slow_seconds=8)
    app = two.make_app(two.a, "provisioned")
    made = two.call(two.a, "POST", f"/apps/{app['name']}/addons", {"plan": "example-partner:test"})
    assert made.status_code == 201 and made.json()["state"] == "provisioning", made.text
    addon_id = made.json()["id"]

    def first_call() -> dict[str, Any] | None:
        return next((entry for entry in two.partner.state()["requests"]
                     if entry["kind"] == "provision" and (entry["body"] or {}).get("uuid") == addon_id), None)

    calling = two.node_at(wait(first_call, 30, "the partner's first provision call")["body"]["callback_url"])
    calling.kill()  # mid-call: the partner is still sleeping on it
    two.partner.set_mode("sync")
    survivor = two.other(calling)
    started = time.monotonic()
    addon = wait(lambda: (found := two.call(survivor, "GET", f"/addons/{addon_id}").json())["state"] != "provisioning"
                 and found, JOB_LEASE_SECONDS + 30, "the add-on's provision by the surviving node")
    assert addon["state"] == "provisioned", addon
    assert time.monotonic() - started < JOB_LEASE_SECONDS + 15
    state = two.partner.state()
    calls = [entry for entry in state["requests"]
             if entry["kind"] == "provision" and (entry["body"] or {}).get("uuid") == addon_id]
    # the dead node's call and the survivor's retry, both for the same uuid: one resource
    assert [two.node_at(entry["body"]["callback_url"]).name for entry in calls] == [calling.name, survivor.name]
    assert [uuid_ for uuid_ in state["resources"] if uuid_ == addon_id] == [addon_id]
    config = two.call(survivor, "GET", f"/apps/{app['name']}/config-vars").json()
    assert config["EXAMPLE_URL"] == state["resources"][addon_id]["config"]["EXAMPLE_URL"]


def test_a_build_whose_builder_dies_fails_on_the_other_node_and_the_next_build_succeeds(two: TwoNodes) -> None:
    for node in two.nodes:
        node.ensure_running()
    app = two.make_app(two.a, "built")
    before = two.call(two.a, "GET", f"/apps/{app['name']}/releases").json()  # v1, "Initial release"
    source = _upload(two, two.a, {"Procfile": "web: true\n"})
    slow = str(two.buildpacks / SLOW_BUILDPACK)
    build = two.call(two.a, "POST", f"/apps/{app['name']}/builds",
                     {"source_blob": {"url": source}, "buildpacks": [{"url": slow}]}).json()

    def building_on() -> Node | None:
        for node in two.nodes:
            path = output_path(node.data_dir, build["id"])
            if path.exists() and b"slow buildpack started" in path.read_bytes():
                return node
        return None

    builder = wait(building_on, 120, "the slow buildpack's start")
    builder.kill()
    survivor = two.other(builder)
    assert two.call(survivor, "GET", f"/apps/{app['name']}/builds/{build['id']}").json()["status"] == "pending"
    started = time.monotonic()
    finished = wait(lambda: (found := two.call(survivor, "GET", f"/apps/{app['name']}/builds/{build['id']}").json())
                    ["status"] != "pending" and found, JOB_LEASE_SECONDS + 40, "the dead builder's build failing")
    assert finished["status"] == "failed" and "builder stopped" in finished["failure_message"]
    assert time.monotonic() - started < JOB_LEASE_SECONDS + 25  # a sweep (10 s) after the lease lapsed
    assert two.call(survivor, "GET", f"/apps/{app['name']}/releases").json() == before  # nothing released

    # a new push (its source uploaded to the survivor: the dead node's disk is gone) builds there
    again = _upload(two, survivor, {"Procfile": "web: true\n"})
    second = two.call(survivor, "POST", f"/apps/{app['name']}/builds", {"source_blob": {"url": again}}).json()
    done = wait(lambda: (found := two.call(survivor, "GET", f"/apps/{app['name']}/builds/{second['id']}").json())
                ["status"] != "pending" and found, 120, "the second build")
    assert done["status"] == "succeeded", done
    releases = two.call(survivor, "GET", f"/apps/{app['name']}/releases").json()
    assert [release["version"] for release in releases] == [1, 2]
    assert releases[-1]["description"].startswith("Deploy")


def test_a_dead_runners_apps_move_to_the_other_runner_within_the_lease(two: TwoNodes) -> None:
    for node in two.nodes:
        node.ensure_running()
    wait(lambda: {two.holder_of(str(uuid.UUID(int=n))) for n in range(64)} == {"node-a", "node-b"}, 30,
         "both runners holding shards")
    # an app of a shard node-a's runner holds
    app = wait(lambda: (made := two.make_app(two.b, "moved")) and two.holder_of(made["id"]) == "node-a" and made,
               30, "an app node-a owns")
    two.apps.append(app["id"])
    _release(two, two.b, app["name"])
    assert two.call(two.b, "PATCH", f"/apps/{app['name']}/formation",
                    {"updates": [{"type": "web", "quantity": 1}]}).status_code == 200
    rows = wait(lambda: [row for row in two.dynos(app["id"]) if row.state == "up"], 60, "web.1 up on node-a")
    # only its owner ran it: one web.1, on node-a's machine (a runner of each node would make two)
    assert [row.name for row in two.dynos(app["id"])] == ["web.1"]
    assert (two.a.data_dir / "dynos" / rows[0].backend_id).exists()
    assert not (two.b.data_dir / "dynos" / rows[0].backend_id).exists()

    two.a.kill()
    killed = time.monotonic()
    assert two.call(two.b, "PATCH", f"/apps/{app['name']}/formation",
                    {"updates": [{"type": "web", "quantity": 2}]}).status_code == 200
    wait(lambda: two.holder_of(app["id"]) == "node-b", RUNNER_LEASE_SECONDS + 10, "node-b taking node-a's shards")
    assert time.monotonic() - killed < RUNNER_LEASE_SECONDS + 5
    moved = wait(lambda: _up_on_b(two, app["id"]), 60, "web.1 and web.2 up on node-b")
    assert sorted(row.name for row in moved) == ["web.1", "web.2"]
    # every shard is node-b's now, and each app is reconciled by exactly one runner
    assert {two.holder_of(str(uuid.UUID(int=n))) for n in range(64)} == {"node-b"}


def _up_on_b(two: TwoNodes, app_id: str) -> list[Dyno] | None:
    rows = [row for row in two.dynos(app_id) if row.state == "up"]
    if len(rows) == 2 and all((two.b.data_dir / "dynos" / row.backend_id).exists() for row in rows):
        return rows
    return None


def _upload(two: TwoNodes, node: Node, files: dict[str, str]) -> str:
    blob = two.call(node, "POST", "/sources").json()["source_blob"]
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"app/{name}")
            info.size, info.mode = len(body.encode()), 0o755
            tar.addfile(info, io.BytesIO(body.encode()))
    put = requests.put(blob["put_url"], data=data.getvalue(), headers={"Content-Type": ""}, timeout=30)
    assert put.status_code == 200, put.text
    return str(blob["get_url"])


def _release(two: TwoNodes, node: Node, app: str) -> None:
    """A slug with the runner tests' web server, uploaded through `node` and released."""
    slug = two.call(node, "POST", f"/apps/{app}/slugs", {"process_types": {"web": "python3 server.py"}})
    assert slug.status_code == 201, slug.text
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        info = tarfile.TarInfo("app/server.py")
        info.size, info.mode = len(SERVER.encode()), 0o755
        tar.addfile(info, io.BytesIO(SERVER.encode()))
    put = requests.put(slug.json()["blob"]["url"], data=data.getvalue(), headers={"Content-Type": ""}, timeout=30)
    assert put.status_code == 200, put.text
    release = two.call(node, "POST", f"/apps/{app}/releases", {"slug": slug.json()["id"]})
    assert release.status_code == 201, release.text


def test_a_returning_node_shares_the_shards_again_and_each_app_runs_on_its_owner_alone(two: TwoNodes) -> None:
    """node-a comes back (its dynos outlived it): the shards are shared again, and an app whose shard
    moved keeps running only where its owner is: the other machine's copies are stopped."""
    assert two.apps, "runs after the takeover test, with its app"
    app_id = two.apps[-1]
    for node in two.nodes:
        node.ensure_running()
    wait(lambda: {two.holder_of(str(uuid.UUID(int=n))) for n in range(64)} == {"node-a", "node-b"}, 30,
         "both runners holding shards again")

    def settled() -> bool:
        owner = two.a if two.holder_of(app_id) == "node-a" else two.b
        elsewhere = [status for status in _local_dynos(two.other(owner), app_id) if status.state in ("starting", "up")]
        up = [row for row in two.dynos(app_id) if row.state == "up"]
        return (not elsewhere and sorted(row.name for row in up) == ["web.1", "web.2"]
                and all((owner.data_dir / "dynos" / row.backend_id).exists() for row in up))

    wait(settled, 60, "the app running on its owner's machine alone")


def _local_dynos(node: Node, app_id: str) -> list[Any]:
    """What the node's machine runs for the app, as its runner's backend sees it."""
    from berth.platform.dynos.local import LocalBackend
    from berth.platform.slug_store import local_store

    return LocalBackend(node.data_dir, local_store(node.data_dir)).list(app_id)
