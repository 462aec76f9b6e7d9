"""The Swarm harness itself: machines form a Swarm, a service spreads over them and answers the root
namespace, freeze and cut_link make a machine stop answering, and a killed run's leftovers go."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import requests

from tests.cluster.conftest import swarm, swarm_cluster, swarm_cluster_three  # noqa: F401
from tests.cluster.machines import (NETNS_DIR, Cluster, Machine, _freezer_hierarchy, clean_leftovers,
                                    push_busybox_image)

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

PORT = 8081
# Each task writes the name of the machine it runs on and serves it, as an unprivileged user.
SERVE_HOSTNAME = ["sh", "-c", "hostname > /tmp/index.html && exec httpd -f -p 5000 -h /tmp"]


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def answer(machine: Machine, timeout: float = 2) -> str | None:
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"http://{machine.address}:{PORT}/", timeout=timeout).text.strip()
    return None


def create_hostname_service(cluster: Cluster) -> docker.models.services.Service:
    image = push_busybox_image(cluster)
    client = cluster.manager.client()
    return client.services.create(
        image, command=SERVE_HOSTNAME, name="hostnames", hostname="{{.Node.Hostname}}", user="65534:65534",
        mode=docker.types.ServiceMode("replicated", replicas=2),
        endpoint_spec=docker.types.EndpointSpec(mode="dnsrr", ports={PORT: (5000, "tcp", "host")}))


def running_nodes(service: docker.models.services.Service) -> list[str]:
    return [task["NodeID"] for task in service.tasks(filters={"desired-state": "running"})
            if task["Status"]["State"] == "running"]


def test_two_machines_form_a_swarm_with_m1_as_its_only_manager(swarm: Cluster) -> None:
    nodes = swarm.manager.client().nodes.list()
    by_name = {node.attrs["Description"]["Hostname"]: node.attrs for node in nodes}
    assert sorted(by_name) == ["m1", "m2"]
    assert all(node["Status"]["State"] == "ready" for node in by_name.values())
    assert by_name["m1"]["Spec"]["Role"] == "manager" and by_name["m2"]["Spec"]["Role"] == "worker"
    assert by_name["m2"]["Status"]["Addr"] == swarm.machine("m2").address
    # Every daemon trusts the registry, which answers the root namespace.
    for machine in swarm.machines:
        assert f"{swarm.registry.rsplit(':', 1)[0]}" in str(machine.client().info()["RegistryConfig"])
    assert requests.get(f"http://{swarm.registry}/v2/", timeout=5).status_code == 200


def test_three_machines_form_a_swarm_on_their_own_addresses(swarm_cluster_three: Cluster) -> None:
    cluster = swarm_cluster_three
    nodes = {node.attrs["Description"]["Hostname"]: node.attrs for node in cluster.manager.client().nodes.list()}
    assert sorted(nodes) == ["m1", "m2", "m3"]
    assert [nodes[m.name]["Status"]["Addr"] for m in cluster.machines] == [m.address for m in cluster.machines]
    assert [nodes[name]["Spec"]["Role"] for name in ("m1", "m2", "m3")] == ["manager", "worker", "worker"]
    # m3 reaches m2 through the hub (the bridge three machines need), the root namespace reaches m3.
    m3 = cluster.machine("m3")
    m3.run_in_namespace(["busybox", "ping", "-c", "1", "-W", "2", cluster.machine("m2").address])
    assert requests.get(f"http://{cluster.registry}/v2/", timeout=5).ok


def test_a_dnsrr_service_published_in_host_mode_spreads_and_answers_the_root_namespace(swarm: Cluster) -> None:
    service = create_hostname_service(swarm)
    nodes = wait_for(lambda: (found := running_nodes(service)) and len(found) == 2 and found, what="2 tasks")
    assert len(set(nodes)) == 2, "both replicas landed on one machine"
    for machine in swarm.machines:
        assert wait_for(lambda: answer(machine), what=f"{machine.name}:{PORT}") == machine.name


def serving_worker(cluster: Cluster) -> Machine:
    """m2, once the hostname service's task on it answers."""
    create_hostname_service(cluster)
    m2 = cluster.machine("m2")
    assert wait_for(lambda: answer(m2), what="m2's task") == "m2"
    return m2


def test_a_frozen_machine_stops_answering_and_answers_again_once_thawed(swarm: Cluster) -> None:
    m2 = serving_worker(swarm)
    swarm.freeze(m2)
    try:
        assert answer(m2, timeout=1) is None
        with pytest.raises(docker.errors.DockerException):  # its dockerd hangs too
            m2.client(timeout=1).ping()
    finally:
        swarm.thaw(m2)
    assert wait_for(lambda: answer(m2), what="m2 after thaw") == "m2"
    assert answer(swarm.machine("m1")) == "m1"


def test_a_cut_link_isolates_the_machine_until_restored(swarm: Cluster) -> None:
    m2 = serving_worker(swarm)
    swarm.cut_link(m2)
    try:
        assert answer(m2, timeout=1) is None
        assert answer(swarm.machine("m1")) == "m1"
        # m2 itself reaches nothing: not even the registry on m1.
        reach = m2.run_in_namespace(["busybox", "wget", "-q", "-T", "1", "-O", "-",
                                     f"http://{swarm.registry}/v2/"], check=False)
        assert reach.returncode != 0
    finally:
        swarm.restore_link(m2)
    assert wait_for(lambda: answer(m2), what="m2 after restore") == "m2"


STARTER = """
import sys, time
from tests.cluster.machines import _start
cluster = _start(2)
print(cluster.slot, cluster.run_id, cluster.directory, flush=True)
time.sleep(600)
"""


def test_a_killed_runs_leftovers_are_cleaned_at_the_next_start(swarm_cluster: Cluster) -> None:
    """A run killed with SIGKILL leaves daemons, namespaces, links, cgroups and data behind; the next
    run's start removes them all, and never touches a cluster a live run holds."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        slot, run_id, directory = starter.stdout.readline().split()
    finally:
        starter.kill()
        starter.wait()
    prefix = f"berth-test-s{slot}-{run_id}"
    assert int(slot) != swarm_cluster.slot
    assert [p for p in NETNS_DIR.iterdir() if p.name.startswith(prefix)], "the killed run left no namespaces"
    freezer = _freezer_hierarchy()[1] / f"{prefix}-m1"
    assert (freezer / "daemons" / "cgroup.procs").read_text().split(), "its dockerd died with it"

    cleaned = clean_leftovers()

    assert int(slot) in cleaned and swarm_cluster.slot not in cleaned
    assert not [p for p in NETNS_DIR.iterdir() if p.name.startswith(prefix)]
    assert not freezer.exists() and not Path(directory).exists()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert f"b{slot}{run_id}" not in links
    # The live cluster is untouched.
    assert len(swarm_cluster.manager.client().nodes.list()) == 2
