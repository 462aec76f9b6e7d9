"""Two control-plane nodes (tests/control_plane/nodes.py: each `python -m berth.serve` over one real
PostgreSQL database). A node dies by SIGKILL to its whole process group, as a machine would: nothing
it was doing is lost, and nothing is done twice.

The module starts both nodes once, side by side, and kills a node once: mid-provision, mid-build and
while its runner holds an app's shard, all at the same moment (starting a node costs some ten
processes' start-up, so a kill per case would cost a restart per case). The last test brings it back."""
from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from berth.addons.postgres.cluster import LocalPostgres
from berth.platform.builds.output import output_path
from berth.platform.models import Dyno
from tests.builds.conftest import SLOW_BUILDPACK, write_slow_buildpack
from tests.control_plane.nodes import Node, TwoNodes, app_tarball, two_nodes
from tests.live_server import ROOT
from tests.partners.harness import ExamplePartner, run_example_partner
from tests.runner.conftest import SERVER, eventually
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow
JOB_LEASE_SECONDS = 3.0
RUNNER_LEASE_SECONDS = 4.0


@dataclass
class Cluster:
    """The two nodes and what the tests share: the example partner and the slow buildpack."""
    nodes: TwoNodes
    partner: ExamplePartner
    buildpacks: Path


@pytest.fixture(scope="module")
def cluster(stack_root: Path, postgres_server: LocalPostgres,  # noqa: F811
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("two-nodes")
    url = postgres_server.create_database("two_nodes").replace("postgresql://", "postgresql+psycopg://", 1)
    buildpacks = base / "local-buildpacks"
    write_slow_buildpack(buildpacks)
    with run_example_partner(base, "slow", slow_seconds=8) as partner:
        def register_partner(node: Node) -> None:
            manifest = base / "manifest.json"
            manifest.write_text(json.dumps(partner.manifest()))
            subprocess.run([sys.executable, "-m", "berth.admin", "register-addon", str(manifest)],
                           cwd=ROOT, env=node.env, check=True, capture_output=True, timeout=60)

        with two_nodes(base, url, before_ready=register_partner, PROVISION_WAIT_SECONDS="0",
                       RETRY_BASE_SECONDS="0.2", JOB_LEASE_SECONDS=str(JOB_LEASE_SECONDS),
                       RUNNER_LEASE_SECONDS=str(RUNNER_LEASE_SECONDS),
                       LOCAL_BUILDPACK_DIRS=str(buildpacks)) as nodes:
            yield Cluster(nodes, partner, buildpacks)


@pytest.fixture
def two(cluster: Cluster) -> TwoNodes:
    return cluster.nodes


def test_both_nodes_serve_the_configured_ca(two: TwoNodes) -> None:
    for node in two.nodes:
        served = requests.get(node.url + "/ca.pem", timeout=10)
        assert served.status_code == 200 and served.text == two.ca_pem
        # ... and their TLS listeners present certificates that CA issued, for the same names
        context = ssl.create_default_context(cadata=two.ca_pem)
        with context.wrap_socket(socket.create_connection(
                ("127.0.0.1", int(node.env["BERTH_TLS_PORT"])), timeout=10), server_hostname="localhost") as tls:
            assert tls.version() is not None


def test_a_call_longer_than_the_job_lease_is_made_once_while_its_worker_lives(cluster: Cluster) -> None:
    """The heartbeat renews the running job's lease: the other node's worker never claims it again."""
    two, partner = cluster.nodes, cluster.partner
    partner.set_mode("slow", slow_seconds=3 * JOB_LEASE_SECONDS)
    app = two.make_app(two.a, "renewed")
    made = two.call(two.a, "POST", f"/apps/{app['name']}/addons", {"plan": "example-partner:test"})
    assert made.status_code == 201, made.text
    addon = eventually(lambda: (found := two.call(two.b, "GET", f"/addons/{made.json()['id']}").json())["state"]
                       != "provisioning" and found, 6 * JOB_LEASE_SECONDS, "the slow provision")
    assert addon["state"] == "provisioned"
    calls = [entry for entry in partner.state()["requests"]
             if entry["kind"] == "provision" and (entry["body"] or {}).get("uuid") == addon["id"]]
    assert len(calls) == 1


def test_a_node_killed_mid_provision_mid_build_and_holding_an_apps_shard_loses_nothing_and_repeats_nothing(
        cluster: Cluster) -> None:
    """node-a dies while its worker is calling a partner to provision, its builder runs a build, and its
    runner holds the shard of an app whose dyno it runs. node-b finishes the provision (one resource),
    fails the build (nothing released; the next push builds), and takes the shard within the lease."""
    two, partner = cluster.nodes, cluster.partner
    dying, survivor = two.a, two.b
    eventually(lambda: two.holders() == {"node-a", "node-b"}, 30, "both runners holding shards")

    # The runner's part: an app of a shard node-a holds, made and scaled through node-b.
    running = two.app_held_by(dying, through=survivor, prefix="moved")
    two.apps.append(running["id"])
    two.release(survivor, running["name"], {"server.py": SERVER}, {"web": "python3 server.py"})
    two.scale(survivor, running["name"], web=1)
    rows = eventually(lambda: [row for row in two.dynos(running["id"]) if row.state == "up"], 60, "web.1 up on node-a")
    # only its owner ran it: one web.1, on node-a's machine (a runner of each node would make two)
    assert [row.name for row in two.dynos(running["id"])] == ["web.1"]
    assert (dying.data_dir / "dynos" / rows[0].backend_id).exists()
    assert not (survivor.data_dir / "dynos" / rows[0].backend_id).exists()

    # The worker's and the builder's part: node-b's worker and builder are held still until node-a's
    # have claimed the jobs, so both are node-a's when it dies.
    partner.set_mode("slow", slow_seconds=120)
    provisioned = two.make_app(dying, "provisioned")
    built = two.make_app(dying, "built")
    releases_before = two.call(dying, "GET", f"/apps/{built['name']}/releases").json()  # v1, "Initial release"
    with survivor.paused("berth.worker", "berth.builder"):
        made = two.call(dying, "POST", f"/apps/{provisioned['name']}/addons", {"plan": "example-partner:test"})
        assert made.status_code == 201 and made.json()["state"] == "provisioning", made.text
        addon_id = made.json()["id"]
        source = _upload(two, dying, {"Procfile": "web: true\n"})
        build = two.call(dying, "POST", f"/apps/{built['name']}/builds",
                         {"source_blob": {"url": source},
                          "buildpacks": [{"url": str(cluster.buildpacks / SLOW_BUILDPACK)}]}).json()

        def provision_calls() -> list[dict[str, Any]]:
            return [entry for entry in partner.state()["requests"]
                    if entry["kind"] == "provision" and (entry["body"] or {}).get("uuid") == addon_id]

        first = eventually(provision_calls, 30, "the partner's first provision call")[0]
        assert two.node_at(first["body"]["callback_url"]) is dying
        eventually(lambda: b"slow buildpack started" in _read(output_path(dying.data_dir, build["id"])), 120,
                   "the slow buildpack's start on node-a")

    dying.kill()  # mid-call (the partner is still sleeping on it), mid-build, its dyno up
    killed = time.monotonic()
    partner.set_mode("sync")
    two.scale(survivor, running["name"], web=2)
    assert two.call(survivor, "GET", f"/apps/{built['name']}/builds/{build['id']}").json()["status"] == "pending"

    def addon_settled() -> bool:
        return two.call(survivor, "GET", f"/addons/{addon_id}").json()["state"] != "provisioning"

    def build_settled() -> bool:
        return two.call(survivor, "GET", f"/apps/{built['name']}/builds/{build['id']}").json()["status"] != "pending"

    seen = _first_seen({"shard taken": lambda: two.holder_of(running["id"]) == "node-b",
                        "provision done": addon_settled, "build ended": build_settled},
                       since=killed, timeout=JOB_LEASE_SECONDS + 40)
    assert seen["shard taken"] < RUNNER_LEASE_SECONDS + 5, seen
    assert seen["provision done"] < JOB_LEASE_SECONDS + 15, seen
    assert seen["build ended"] < JOB_LEASE_SECONDS + 25, seen  # a sweep (10 s) after the lease lapsed

    # The runner: both dynos on node-b's machine, and every shard node-b's
    moved = eventually(lambda: _up_on(survivor, two, running["id"], 2), 60, "web.1 and web.2 up on node-b")
    assert sorted(row.name for row in moved) == ["web.1", "web.2"]
    assert two.holders() == {"node-b"}

    # The provision: the dead node's call and the survivor's retry, both for the same uuid: one resource
    addon = two.call(survivor, "GET", f"/addons/{addon_id}").json()
    assert addon["state"] == "provisioned", addon
    state = partner.state()
    assert [two.node_at(entry["body"]["callback_url"]).name for entry in provision_calls()] == \
        [dying.name, survivor.name]
    assert [uuid_ for uuid_ in state["resources"] if uuid_ == addon_id] == [addon_id]
    config = two.call(survivor, "GET", f"/apps/{provisioned['name']}/config-vars").json()
    assert config["EXAMPLE_URL"] == state["resources"][addon_id]["config"]["EXAMPLE_URL"]

    # The build: failed, nothing released; a new push (its source uploaded to the survivor: the dead
    # node's disk is gone) builds there
    finished = two.call(survivor, "GET", f"/apps/{built['name']}/builds/{build['id']}").json()
    assert finished["status"] == "failed" and "builder stopped" in finished["failure_message"], finished
    assert two.call(survivor, "GET", f"/apps/{built['name']}/releases").json() == releases_before
    again = _upload(two, survivor, {"Procfile": "web: true\n"})
    second = two.call(survivor, "POST", f"/apps/{built['name']}/builds", {"source_blob": {"url": again}}).json()
    second_path = f"/apps/{built['name']}/builds/{second['id']}"
    done = eventually(lambda: (found := two.call(survivor, "GET", second_path).json())["status"] != "pending"
                      and found, 120, "the second build")
    assert done["status"] == "succeeded", done
    releases = two.call(survivor, "GET", f"/apps/{built['name']}/releases").json()
    assert [release["version"] for release in releases] == [1, 2]
    assert releases[-1]["description"].startswith("Deploy")


def _first_seen(conditions: dict[str, Callable[[], bool]], since: float, timeout: float) -> dict[str, float]:
    """Seconds from `since` until each condition first held, all watched at once (so no wait on one
    delays noticing another)."""
    seen: dict[str, float] = {}
    while len(seen) < len(conditions):
        for what, condition in conditions.items():
            if what not in seen and condition():
                seen[what] = time.monotonic() - since
        if time.monotonic() - since > timeout:
            pytest.fail(f"{sorted(set(conditions) - set(seen))} not within {timeout} s (seen: {seen})")
        time.sleep(0.2)
    return seen


def _read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def _up_on(node: Node, two: TwoNodes, app_id: str, count: int) -> list[Dyno] | None:
    rows = [row for row in two.dynos(app_id) if row.state == "up"]
    if len(rows) == count and all((node.data_dir / "dynos" / row.backend_id).exists() for row in rows):
        return rows
    return None


def _upload(two: TwoNodes, node: Node, files: dict[str, str]) -> str:
    blob = two.call(node, "POST", "/sources").json()["source_blob"]
    put = requests.put(blob["put_url"], data=app_tarball(files), headers={"Content-Type": ""}, timeout=30)
    assert put.status_code == 200, put.text
    return str(blob["get_url"])


def test_a_returning_node_shares_the_shards_again_and_each_app_runs_on_its_owner_alone(two: TwoNodes) -> None:
    """node-a comes back (its dynos outlived it): the shards are shared again, and an app whose shard
    moved keeps running only where its owner is: the other machine's copies are stopped."""
    assert two.apps, "runs after the takeover test, with its app"
    app_id = two.apps[-1]
    two.a.start()
    eventually(lambda: two.holders() == {"node-a", "node-b"}, 30, "both runners holding shards again")

    def settled() -> bool:
        owner = two.a if two.holder_of(app_id) == "node-a" else two.b
        elsewhere = [status for status in _local_dynos(two.other(owner), app_id) if status.state in ("starting", "up")]
        up = [row for row in two.dynos(app_id) if row.state == "up"]
        return (not elsewhere and sorted(row.name for row in up) == ["web.1", "web.2"]
                and all((owner.data_dir / "dynos" / row.backend_id).exists() for row in up))

    eventually(settled, 60, "the app running on its owner's machine alone")


def _local_dynos(node: Node, app_id: str) -> list[Any]:
    """What the node's machine runs for the app, as its runner's backend sees it."""
    from berth.platform.dynos.local import LocalBackend
    from berth.platform.slug_store import local_store

    return LocalBackend(node.data_dir, local_store(node.data_dir)).list(app_id)
