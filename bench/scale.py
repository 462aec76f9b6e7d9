"""Swarm runner speed (issue 14), each measure beside its floor in the same run, on the two-machine
test swarm (tests/cluster/: network namespaces, a dockerd each, a registry):

- scale 0 → 10 web dynos on the swarm until all ten answer through Berth's router, against
  `docker service create` of the same image with 10 replicas (host-mode ports, the same health
  check) until each task answers on its own address. Goal ≤ 1.3× the floor.
- recovery: 4 web dynos over both machines, the worker frozen (cgroup freezer: its dockerd and
  containers); the time until 4 dynos are up on the machine left and all answer through the router,
  and how many requests of a steady client failed meanwhile (goal 0).

Both machines have pulled the app image before anything is timed. Needs root, dockerd and
docker-registry (`make setup`). Run from the repository root on a quiet machine:

    .venv/bin/python bench/scale.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import DYNOS, answers, print_table_head, scale_through_berth, wait  # noqa: E402
from berth.platform.dynos.images import ensure_stack_image  # noqa: E402
from berth.platform.dynos.swarm import SwarmBackend  # noqa: E402
from berth.platform.dynos.swarm_spec import service_name  # noqa: E402
from berth.supervise.stack import require_stack  # noqa: E402
from tests.cluster.machines import Cluster, start_cluster  # noqa: E402
from tests.live_server import free_port  # noqa: E402
from tests.runner.conftest import Load, RunPlatform, running_platform  # noqa: E402


def floor_service(cluster: Cluster, template: dict, replicas: int) -> float:
    """`docker service create` of Berth's own task template (same image, command, health check,
    host-mode port) with `replicas`, until each task answers on its address; then removed."""
    backend = SwarmBackend(cluster.manager.base_url)
    body = {"Name": "floor-web", "TaskTemplate": template, "Mode": {"Replicated": {"Replicas": replicas}},
            "EndpointSpec": {"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": 5000,
                                                        "PublishMode": "host"}]}}
    started = time.perf_counter()
    service = backend.api._result(backend.api._post_json(backend.api._url("/services/create"), data=body), True)["ID"]
    nodes = {node["ID"]: node["Status"]["Addr"] for node in backend.api.nodes()}
    answered: set[str] = set()

    def all_answered() -> bool:
        for task in backend.api.tasks(filters={"service": service, "desired-state": "running"}):
            ports = (task["Status"].get("PortStatus") or {}).get("Ports") or []
            if task["Status"]["State"] == "running" and ports and task["ID"] not in answered:
                if answers(f"http://{nodes[task['NodeID']]}:{ports[0]['PublishedPort']}/") is not None:
                    answered.add(task["ID"])
        return len(answered) == replicas

    wait(all_answered, timeout=300, interval=0.05)
    elapsed = time.perf_counter() - started
    backend.api.remove_service(service)
    label = f"com.docker.swarm.service.id={service}"
    wait(lambda: not any(machine.client().api.containers(all=True, filters={"label": label})
                         for machine in cluster.machines), timeout=120, interval=0.2)
    return elapsed


def recovery(platform: RunPlatform, cluster: Cluster, app: str) -> tuple[float, int, int]:
    """Seconds from freezing the worker until 4 dynos are up on the manager and all answer; failed
    requests of a steady client meanwhile, and requests made."""
    platform.scale(app, web=4)
    wait(lambda: platform.served_by(app, 40) == {f"web.{n}" for n in range(1, 5)}, timeout=300, interval=0.2)
    worker = cluster.machines[1]
    try:
        with Load(platform, app) as load:
            started = time.perf_counter()
            cluster.freeze(worker)

            def all_on_manager() -> bool:
                up = [row for row in platform.dynos(app) if row.state == "up"]
                return len(up) == 4 and all(row.address.startswith(f"{cluster.manager.address}:") for row in up)
            wait(all_on_manager, timeout=120, interval=0.1)
            wait(lambda: platform.served_by(app, 20) == {f"web.{n}" for n in range(1, 5)}, timeout=60, interval=0.1)
            elapsed = time.perf_counter() - started
    finally:
        cluster.heal()
    platform.scale(app, web=0)
    wait(lambda: platform.dynos(app) == [], timeout=120, interval=0.2)
    return elapsed, len(load.failures()), len(load.results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stack = require_stack()
    load_before = os.getloadavg()[0]
    scale: dict[str, list[float]] = {"berth": [], "floor": []}
    recoveries = []
    with start_cluster(2) as cluster, tempfile.TemporaryDirectory(prefix="berth-bench-scale-") as tmp:
        ensure_stack_image(cluster.manager.client(), cluster.registry, stack)
        with running_platform(Path(tmp), free_port(), RUNNER="swarm", DOCKER_HOST=cluster.manager.base_url,
                              REGISTRY=cluster.registry) as platform:
            app = "bench-scale"
            platform.built.make_app(app)
            platform.deploy(app)
            platform.scale(app, web=4)  # both machines pull the image before anything is timed
            wait(lambda: len({row.address.rsplit(":", 1)[0] for row in platform.dynos(app) if row.state == "up"}) == 2,
                 timeout=600, interval=0.2)
            app_id = platform.call("GET", f"/apps/{app}").json()["id"]
            backend = SwarmBackend(cluster.manager.base_url)
            template = backend.api.inspect_service(service_name(app_id, "web"))["Spec"]["TaskTemplate"]
            platform.scale(app, web=0)
            wait(lambda: platform.dynos(app) == [], timeout=120, interval=0.2)
            for round_ in range(args.rounds):
                scale["floor"].append(floor_service(cluster, template, DYNOS))
                scale["berth"].append(scale_through_berth(platform, app))
                print(f"round {round_ + 1}: scale 0→{DYNOS} floor {scale['floor'][-1]:.2f} s, "
                      f"Berth {scale['berth'][-1]:.2f} s", file=sys.stderr)
                recoveries.append(recovery(platform, cluster, app))
                print(f"round {round_ + 1}: recovery {recoveries[-1][0]:.2f} s, "
                      f"{recoveries[-1][1]} of {recoveries[-1][2]} requests failed", file=sys.stderr)
            image = template["ContainerSpec"]["Image"]
    median = statistics.median
    print_table_head(args.rounds, load_before, f"image {image.rsplit('/', 1)[-1][:24]}…")
    floor_s, berth_s = median(scale["floor"]), median(scale["berth"])
    print(f"| scale 0 → {DYNOS} web dynos on 2 machines, all answering (s; floor: `docker service create`) | "
          f"{floor_s:.2f} | {berth_s:.2f} | {berth_s / floor_s:.2f}× | ≤ 1.3× |")
    print(f"| a frozen machine's 2 of 4 dynos replaced, all 4 answering through the router (s) | — | "
          f"{median(r[0] for r in recoveries):.2f} | — | — |")
    print(f"| requests failed meanwhile | — | {sum(r[1] for r in recoveries)} of {sum(r[2] for r in recoveries)} | "
          f"— | 0 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
