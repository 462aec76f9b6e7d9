"""Two control-plane nodes (tests/control_plane/nodes.py) in Swarm mode over one Postgres and the
session's two-machine swarm: each app's services are converged, recorded and logged by the runner
holding its shard alone, and every node's router routes every task. The tasks live on the swarm, not
on a node: when the node holding the app's shard dies, the other takes the shard within the lease and
its router goes on answering from the same tasks."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest

from berth.addons.postgres.cluster import LocalPostgres
from berth.platform.dynos.swarm_spec import LABEL
from tests.cluster.machines import Cluster, remove_services
from tests.control_plane.nodes import Node, TwoNodes, two_nodes
from tests.runner.conftest import SERVER, Load, eventually, served_by, through_router

pytestmark = [pytest.mark.slow, pytest.mark.swarm]
RUNNER_LEASE_SECONDS = 10.0  # the default: a runner's round on a loaded machine can take seconds
FIRST_PULL = 240  # the first task on a machine pulls the stack image from the registry
QUIET_SECONDS = 4.0  # several runner rounds of both nodes, each of which would update a service in a fight


@dataclass
class SwarmNodes:
    two: TwoNodes
    manager: docker.APIClient  # the swarm's manager, as the tests see it
    app: dict[str, Any] = field(default_factory=dict)  # the app the tests share: made by the first
    quiet: dict[str, Any] = field(default_factory=dict)  # an app with one worker and no requests

    def service(self) -> dict[str, Any]:
        """The app's one Swarm service (its web process type), as the manager has it."""
        services = self.manager.services(filters={"label": f"{LABEL}app_id={self.app['id']}"})
        assert len(services) == 1, services
        return services[0]

    def running_tasks(self) -> dict[int, str]:
        """slot → the id of the task running in it."""
        tasks = self.manager.tasks(filters={"service": self.service()["ID"], "desired-state": "running"})
        return {task["Slot"]: task["ID"] for task in tasks if task["Status"]["State"] == "running"}

    def quiet_version(self) -> int:
        """The service's object version, once it stays the same for QUIET_SECONDS: a service two
        runners fought over would be updated again and again."""
        version = self.service()["Version"]["Index"]
        deadline = time.monotonic() + QUIET_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.service()["Version"]["Index"]
            assert now == version, f"the service was updated again ({version} → {now}) with nothing asked"
        return version

    def said(self, node: Node, line: str) -> int:
        """How many times `node`'s runner logged `line` about the app's service."""
        return len(node.log_lines(f"service {self.service()['Spec']['Name']} {line}"))

    def tasks_state(self) -> str:
        """What the swarm says of the app's tasks, for a failure's message."""
        tasks = self.manager.tasks(filters={"label": f"{LABEL}app_id={self.app['id']}"})
        return "\n".join(f"slot {task.get('Slot')} {task['Status']['State']} {task['Status'].get('Err', '')}"
                         for task in tasks) or "no tasks"

    def slot_tasks(self) -> Counter[int]:
        """How many tasks each slot of the service has had (Swarm keeps a slot's recent ones)."""
        return Counter(task["Slot"] for task in self.manager.tasks(filters={"service": self.service()["ID"]}))

    def assert_logged_once(self) -> list[str]:
        """Nothing in the app's log stream was written twice: no output line forwarded twice (each
        carries the time Docker stamped on it) and no task's start told twice (at most one `Starting
        process` line per task a slot has had). Returns the lines."""
        lines = self.two.log(self.two.b, self.app["name"], dyno="web")
        output = Counter(line for line in lines if " app[web." in line)
        assert output and not [line for line, count in output.items() if count > 1], lines
        for slot, tasks in self.slot_tasks().items():  # (its oldest lines may have made way for router lines)
            started = sum(f"heroku[web.{slot}]: Starting process" in line for line in lines)
            assert started <= tasks, (slot, started, tasks, lines)
        return lines

    def quiet_worker_said(self) -> int:
        """How many times the quiet app's log has its worker's one line. Its log holds few lines (no
        requests, so no router lines): none of them has made way for newer ones."""
        return sum("app[worker.1]: quiet worker up" in line for line in self.two.log(self.two.b, self.quiet["name"]))


@pytest.fixture(scope="module")
def swarm_nodes(stack_root: Path, postgres_server: LocalPostgres, swarm_cluster: Cluster,
                swarm_stack_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmNodes]:
    base = tmp_path_factory.mktemp("two-swarm-nodes")
    url = postgres_server.create_database("two_swarm_nodes").replace("postgresql://", "postgresql+psycopg://", 1)
    manager = docker.APIClient(base_url=swarm_cluster.manager.base_url)
    try:
        with two_nodes(base, url, RUNNER="swarm", DOCKER_HOST=swarm_cluster.manager.base_url,
                       REGISTRY=swarm_cluster.registry, RUNNER_LEASE_SECONDS=str(RUNNER_LEASE_SECONDS),
                       CRASH_COOL_OFF_SECONDS="1") as two:
            yield SwarmNodes(two, manager)
    finally:
        manager.close()
        remove_services(swarm_cluster)


def test_an_app_deployed_through_one_node_answers_through_both_routers_and_only_its_owner_converges_it(
        swarm_nodes: SwarmNodes) -> None:
    two = swarm_nodes.two
    eventually(lambda: two.holders() == {"node-a", "node-b"}, 30, "both runners holding shards")
    app = swarm_nodes.app = two.app_held_by(two.a, through=two.a, prefix="swarm-two")
    two.release(two.a, app["name"], {"server.py": SERVER}, {"web": "python3 server.py"})
    try:
        for node in two.nodes:
            eventually(lambda: served_by(node.router_port, app["name"], 5) == {"web.1"}, FIRST_PULL,
                       f"web.1 answering through {node.name}'s router")
    except AssertionError as failed:
        answer = through_router(two.a.router_port, app["name"])
        rows = [(row.name, row.state, row.address) for row in two.dynos(app["id"])]
        logged = "\n".join(two.log(two.a, app["name"], dyno="web")[-30:])
        raise AssertionError(f"{failed}\n{swarm_nodes.tasks_state()}\nrows {rows}\nrouter: {answer.status_code} "
                             f"{answer.text[:300]}\n{logged}") from None
    created = swarm_nodes.quiet_version()
    quiet = swarm_nodes.quiet = two.app_held_by(two.a, through=two.b, prefix="swarm-quiet")
    two.release(two.b, quiet["name"], {"server.py": SERVER}, {"worker": "echo quiet worker up; exec sleep 86400"})
    two.scale(two.b, quiet["name"], worker=1)
    eventually(lambda: swarm_nodes.quiet_worker_said() == 1, FIRST_PULL, "the quiet worker's line in its log")

    # Scaled through node-b, applied by node-a (the shard's holder) once; node-b's runner, nudged by
    # its own API, leaves the service alone.
    two.scale(two.b, app["name"], web=2)
    for node in two.nodes:
        eventually(lambda: served_by(node.router_port, app["name"], 40) == {"web.1", "web.2"}, FIRST_PULL,
                   f"web.1 and web.2 answering through {node.name}'s router")
    scaled = swarm_nodes.quiet_version()
    assert scaled > created
    assert swarm_nodes.service()["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert (swarm_nodes.said(two.a, "created"), swarm_nodes.said(two.a, "scaled")) == (1, 1)
    assert swarm_nodes.said(two.b, "") == 0, two.b.log_lines("berth.runner")
    listed = two.call(two.b, "GET", f"/apps/{app['name']}/dynos").json()
    assert sorted((dyno["name"], dyno["state"]) for dyno in listed) == [("web.1", "up"), ("web.2", "up")]
    # recorded and logged by one runner: each line once
    lines = swarm_nodes.assert_logged_once()
    assert any("heroku[web.2]: State changed from starting to up" in line for line in lines), lines
    assert any("app[web.2]: listening on 5000" in line for line in lines), lines


def test_when_the_owner_dies_the_other_node_takes_the_shard_and_its_router_keeps_answering(
        swarm_nodes: SwarmNodes) -> None:
    two = swarm_nodes.two
    app = swarm_nodes.app
    assert app, "runs after the deploy test, with its app"
    assert two.holder_of(app["id"]) == "node-a"
    tasks = swarm_nodes.running_tasks()
    assert sorted(tasks) == [1, 2]
    with Load(two.b, app["name"]) as load:
        time.sleep(1)
        two.a.kill()
        killed = time.monotonic()
        eventually(lambda: two.holder_of(app["id"]) == "node-b", RUNNER_LEASE_SECONDS + 10, "node-b taking the shard")
        assert time.monotonic() - killed < RUNNER_LEASE_SECONDS + 5
        two.scale(two.b, app["name"], web=3)
        eventually(lambda: served_by(two.b.router_port, app["name"], 60) == {"web.1", "web.2", "web.3"}, 60,
                   "web.3 answering through node-b's router")
        time.sleep(1)
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 50
    swarm_nodes.quiet_version()
    assert swarm_nodes.service()["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    assert swarm_nodes.said(two.b, "scaled") == 1, two.b.log_lines("berth.runner")
    # the tasks of web.1 and web.2 lived on through the node's death: the swarm's, not the node's
    assert {slot: task for slot, task in swarm_nodes.running_tasks().items() if slot in tasks} == tasks
    # node-b forwards the apps' output from when node-a stopped, not again from its own start
    lines = swarm_nodes.assert_logged_once()
    assert any("app[web.3]: listening on 5000" in line for line in lines), lines
    assert two.holder_of(swarm_nodes.quiet["id"]) == "node-b"
    assert swarm_nodes.quiet_worker_said() == 1, two.log(two.b, swarm_nodes.quiet["name"])
