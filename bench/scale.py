"""Swarm runner speed (issue 14), each measure beside its floor in the same run, on the two-machine
test swarm (tests/cluster/: network namespaces, a dockerd each, a registry):

- scale 0 → 10 web dynos on the swarm until all ten answer through Berth's router, against
  `docker service create` of the same image with 10 replicas (host-mode ports, the same health
  check) until each task answers on its own address. Goal ≤ 1.3× the floor.
- recovery: 4 web dynos over both machines, the worker frozen (cgroup freezer: its dockerd and
  containers); the time until 4 dynos are up on the machine left and all answer through the router,
  and how many requests of a steady client failed meanwhile (goal 0).
- deploy of the sample app (tests/fixtures/apps/flask) to the swarm against the local backend: a
  second live Berth with the local runner (the sandbox) runs beside the swarm one. The app is built
  once; each round releases the same slug, made new by one file with the round's id (so neither
  backend re-uses the round before: the swarm builds and pushes the slug's image, a machine pulls
  it), to a new app on each platform, and times the release until the router answers with the
  app's page. A release, not a push, so that both sides time the run path alone: the build is the
  same builder's on either, and pip's network time would only add noise.

Both machines have pulled the stack image before anything is timed. Needs root, dockerd and
docker-registry (`make setup`), and the network (PyPI) for the sample app's one build. Run from the
repository root on a quiet machine:

    .venv/bin/python bench/scale.py [--rounds 3] [--only scale|deploy] [--sample flask|server]

`--sample server` deploys the runner tests' one-file server instead (no build). If a swarm refuses
a slug (Error R99), the deploy stops at once with that message instead of waiting.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import DYNOS, answers, print_table_head, scale_through_berth, wait  # noqa: E402
from berth.platform.dynos.images import ensure_stack_image  # noqa: E402
from berth.platform.dynos.swarm import SwarmBackend  # noqa: E402
from berth.platform.dynos.swarm_spec import service_name  # noqa: E402
from berth.platform.slug_store import LocalSlugStore  # noqa: E402
from berth.supervise.stack import require_stack  # noqa: E402
from tests.cluster.machines import Cluster, start_cluster  # noqa: E402
from tests.builds.conftest import APPS  # noqa: E402
from tests.live_server import free_port  # noqa: E402
from tests.runner.conftest import SERVER, Load, RunPlatform, running_platform  # noqa: E402


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


SAMPLE = APPS / "flask"
SAMPLE_PAGE = "Hello from Flask"


def sample_slug(platform: RunPlatform) -> tuple[bytes, dict[str, str]]:
    """The sample app built once on `platform`: its slug's bytes and process types."""
    app = "bench-sample"
    platform.built.make_app(app)
    build = platform.call("POST", f"/apps/{app}/builds",
                          {"source_blob": {"url": platform.built.upload(SAMPLE)}}).json()
    built = platform.built.wait_for(app, build["id"])
    if built["status"] != "succeeded":
        raise SystemExit(f"the sample app's build failed: {built.get('failure_message')}")
    slug = platform.call("GET", f"/apps/{app}/slugs/{built['slug']['id']}").json()
    with LocalSlugStore(platform.built.data_dir / "slugs").open(slug["checksum"]) as blob:
        data = blob.read()
    platform.call("DELETE", f"/apps/{app}")
    return data, slug["process_types"]


def with_round_file(slug: bytes) -> bytes:
    """The slug plus app/.bench-round (a new id): the same app, a slug neither backend has seen."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(slug), mode="r:gz") as source, \
            tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        mark = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo("app/.bench-round")
        info.size, info.mode = len(mark), 0o644
        target.addfile(info, io.BytesIO(mark))
    return out.getvalue()


def deploy_slug(platform: RunPlatform, app: str, slug: bytes, process_types: dict[str, str], page_text: str) -> float:
    """A new app gets `slug` (uploaded first, untimed); seconds from its release being asked for
    until the router answers with the app's page. The app is deleted afterwards."""
    platform.built.make_app(app)
    made = platform.call("POST", f"/apps/{app}/slugs", {"process_types": process_types})
    put = requests.put(made.json()["blob"]["url"], data=slug, headers={"Content-Type": ""}, timeout=300)
    if put.status_code != 200:
        raise SystemExit(f"uploading the slug failed: {put.status_code} {put.text[:200]}")
    url = f"http://127.0.0.1:{platform.router_port}/"
    started = time.perf_counter()
    released = platform.call("POST", f"/apps/{app}/releases", {"slug": made.json()["id"]})
    if released.status_code != 201:
        raise SystemExit(f"the release failed: {released.text[:200]}")

    checked = [time.monotonic()]

    def page() -> bool:
        answer = answers(url, {"Host": f"{app}.localhost"})
        if answer is not None and answer.status_code == 200 and page_text in answer.text:
            return True
        if time.monotonic() - checked[0] > 2:  # a refusal in the app's log ends the measure at once
            checked[0] = time.monotonic()
            refused = [line for line in platform.log(app, dyno="web") if "Error R99" in line]
            if refused:
                raise SystemExit(f"the {app} deploy was refused: {refused[-1]}")
        return False
    wait(page, timeout=600, interval=0.02)
    elapsed = time.perf_counter() - started
    platform.call("DELETE", f"/apps/{app}")
    return elapsed


def server_slug() -> tuple[bytes, dict[str, str]]:
    """The runner tests' web server (one file, the stack's python3): no build, no virtualenv."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        info = tarfile.TarInfo("app/server.py")
        info.size, info.mode = len(SERVER.encode()), 0o755
        tar.addfile(info, io.BytesIO(SERVER.encode()))
    return data.getvalue(), {"web": "python3 server.py"}


def deploys(swarm: RunPlatform, local: RunPlatform, rounds: int, sample: str) -> dict[str, list[float]]:
    """Per round, the same new slug released to a new app on each platform (which goes first alternates)."""
    if sample == "flask":
        print("building the sample app once (local platform)…", file=sys.stderr)
        slug, process_types = sample_slug(local)
    else:
        slug, process_types = server_slug()
    page_text = SAMPLE_PAGE if sample == "flask" else '"dyno"'
    times: dict[str, list[float]] = {"swarm": [], "local": []}
    for round_ in range(rounds):
        variant = with_round_file(slug)
        order = [("swarm", swarm), ("local", local)]
        for kind, platform in order if round_ % 2 == 0 else order[::-1]:
            print(f"round {round_ + 1}: deploying to the {kind} platform…", file=sys.stderr)
            times[kind].append(deploy_slug(platform, f"bench-deploy-{kind}-{round_}", variant, process_types,
                                           page_text))
        print(f"round {round_ + 1}: deploy of the {sample} app ({len(slug) / 1e6:.1f} MB slug): swarm "
              f"{times['swarm'][-1]:.2f} s, local {times['local'][-1]:.2f} s", file=sys.stderr)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("scale", "deploy"), help="scale and recovery, or deploy (default: all)")
    parser.add_argument("--sample", choices=("flask", "server"), default="flask",
                        help="the deploy's app: the sample Flask app (default), or the runner tests' one-file server")
    args = parser.parse_args()
    stack = require_stack()
    load_before = os.getloadavg()[0]
    scale: dict[str, list[float]] = {"berth": [], "floor": []}
    recoveries: list[tuple[float, int, int]] = []
    deployed: dict[str, list[float]] = {}
    with start_cluster(2) as cluster, tempfile.TemporaryDirectory(prefix="berth-bench-scale-") as tmp:
        ensure_stack_image(cluster.manager.client(), cluster.registry, stack)
        with running_platform(Path(tmp) / "swarm", free_port(), RUNNER="swarm", DOCKER_HOST=cluster.manager.base_url,
                              REGISTRY=cluster.registry) as platform:
            app = "bench-scale"
            platform.built.make_app(app)
            platform.deploy(app)
            platform.scale(app, web=4)  # both machines pull the stack image before anything is timed
            print("warming up: 4 dynos over both machines…", file=sys.stderr)
            wait(lambda: len({row.address.rsplit(":", 1)[0] for row in platform.dynos(app) if row.state == "up"}) == 2,
                 timeout=600, interval=0.2)
            app_id = platform.call("GET", f"/apps/{app}").json()["id"]
            backend = SwarmBackend(cluster.manager.base_url)
            template = backend.api.inspect_service(service_name(app_id, "web"))["Spec"]["TaskTemplate"]
            image = template["ContainerSpec"]["Image"]
            platform.scale(app, web=0)
            wait(lambda: platform.dynos(app) == [], timeout=120, interval=0.2)
            for round_ in range(args.rounds if args.only != "deploy" else 0):
                scale["floor"].append(floor_service(cluster, template, DYNOS))
                scale["berth"].append(scale_through_berth(platform, app))
                print(f"round {round_ + 1}: scale 0→{DYNOS} floor {scale['floor'][-1]:.2f} s, "
                      f"Berth {scale['berth'][-1]:.2f} s", file=sys.stderr)
                recoveries.append(recovery(platform, cluster, app))
                print(f"round {round_ + 1}: recovery {recoveries[-1][0]:.2f} s, "
                      f"{recoveries[-1][1]} of {recoveries[-1][2]} requests failed", file=sys.stderr)
            if args.only != "scale":
                with running_platform(Path(tmp) / "local", free_port()) as local:
                    deployed = deploys(platform, local, args.rounds, args.sample)
    median = statistics.median
    print_table_head(args.rounds, load_before, f"image {image.rsplit('/', 1)[-1][:24]}…")
    if scale["berth"]:
        floor_s, berth_s = median(scale["floor"]), median(scale["berth"])
        print(f"| scale 0 → {DYNOS} web dynos on 2 machines, all answering (s; floor: `docker service create`) | "
              f"{floor_s:.2f} | {berth_s:.2f} | {berth_s / floor_s:.2f}× | ≤ 1.3× |")
        print(f"| a frozen machine's 2 of 4 dynos replaced, all 4 answering through the router (s) | — | "
              f"{median(r[0] for r in recoveries):.2f} | — | — |")
        print(f"| requests failed meanwhile | — | {sum(r[1] for r in recoveries)} of "
              f"{sum(r[2] for r in recoveries)} | — | 0 |")
    if deployed:
        local_s, swarm_s = median(deployed["local"]), median(deployed["swarm"])
        print(f"| deploy of the {args.sample} app: release → its page through the router (s; floor: the local "
              f"backend) | {local_s:.2f} | {swarm_s:.2f} | {swarm_s / local_s:.2f}× | reported |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
