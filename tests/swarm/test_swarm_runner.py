"""The runner in Swarm mode end to end: a release becomes a Swarm service on two machines, reached
through Berth's router; scaling, a machine's death and a rolling deploy, under steady requests."""
from __future__ import annotations

import time

import pytest

from tests.cluster.machines import Cluster
from tests.runner.conftest import Load, RunPlatform, deploy_under_load, eventually

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

FIRST_PULL = 240  # the first task on a machine pulls the stack image (~900 MB) from the registry


def swarm_state(cluster: Cluster, platform: RunPlatform) -> str:
    """What the swarm and the runner say, for a failure's message."""
    tasks = cluster.manager.docker("service", "ps", "--no-trunc", "--format",
                                   "{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}",
                                   *[line.split()[0] for line in cluster.manager.docker(
                                       "service", "ls", "-q").stdout.split()], check=False)
    return f"tasks:\n{tasks.stdout}{tasks.stderr}\nrunner log:\n{platform.runner_log()[-3000:]}"


def machines_of(platform: RunPlatform, app: str) -> dict[str, str]:
    """dyno name → the address of the machine it runs on, for the app's up dynos."""
    return {row.name: row.address.rsplit(":", 1)[0] for row in platform.dynos(app) if row.state == "up" and row.address}


def test_a_deploy_answers_through_the_router_and_4_dynos_spread_over_both_machines(
        swarm_platform: RunPlatform, swarm_cluster: Cluster) -> None:
    app = "swarm-scale"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app, version="1")
    try:
        eventually(lambda: swarm_platform.served_by(app, 5) == {"web.1"}, timeout=FIRST_PULL,
                   what="web.1 serving through the router")
    except AssertionError:
        raise AssertionError(swarm_state(swarm_cluster, swarm_platform)) from None
    listed = swarm_platform.call("GET", f"/apps/{app}/dynos").json()
    assert [(dyno["name"], dyno["state"], dyno["release"]["version"]) for dyno in listed] == [("web.1", "up", 2)]
    swarm_platform.scale(app, web=4)
    everyone = {"web.1", "web.2", "web.3", "web.4"}
    eventually(lambda: swarm_platform.served_by(app, 40) == everyone, timeout=FIRST_PULL, what="four dynos serving")
    machines = machines_of(swarm_platform, app)
    assert set(machines.values()) == {machine.address for machine in swarm_cluster.machines}, machines
    lines = swarm_platform.log(app, dyno="web")  # not the router's lines
    assert any("heroku[web.1]: Starting process with command `python3 server.py`" in line for line in lines), lines
    assert any("heroku[web.3]: State changed from starting to up" in line for line in lines), lines
    assert any("app[web.2]: listening on 5000" in line for line in lines), lines


@pytest.mark.parametrize("failure", ["freeze", "cut_link"])
def test_a_machine_that_dies_has_its_dynos_replaced_and_requests_keep_succeeding(
        swarm_platform: RunPlatform, swarm_cluster: Cluster, failure: str) -> None:
    """Frozen (every process of the machine stopped: the kernel still accepts connections, nothing
    answers) or cut off (its link down)."""
    app = f"swarm-{failure.replace('_', '-')}"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app)
    swarm_platform.scale(app, web=4)
    everyone = {"web.1", "web.2", "web.3", "web.4"}
    eventually(lambda: swarm_platform.served_by(app, 40) == everyone, timeout=FIRST_PULL, what="four dynos serving")
    worker = swarm_cluster.machines[1]  # m1 is the only manager: freezing it would stop the swarm itself
    assert worker.address in machines_of(swarm_platform, app).values()
    try:
        with Load(swarm_platform, app) as load:
            time.sleep(1)
            frozen_at = time.monotonic()
            getattr(swarm_cluster, failure)(worker)
            eventually(lambda: len(machines_of(swarm_platform, app)) == 4
                       and set(machines_of(swarm_platform, app).values()) == {swarm_cluster.manager.address},
                       timeout=90, what="four dynos up again, all on the machine that is left")
            recovered = time.monotonic() - frozen_at
            eventually(lambda: swarm_platform.served_by(app, 20) == everyone, what="the replacements serving")
            time.sleep(1)
    finally:
        swarm_cluster.heal()
    assert load.failures() == [], load.failures()[:5]
    assert len(load.results) > 50
    print(f"four dynos up again {recovered:.1f} s after the {failure}")


def test_a_rolling_deploy_fails_no_request(swarm_platform: RunPlatform, swarm_cluster: Cluster) -> None:
    app = "swarm-roll"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app, version="1")
    swarm_platform.scale(app, web=2)
    eventually(lambda: swarm_platform.served_by(app, 20) == {"web.1", "web.2"}, timeout=FIRST_PULL,
               what="two dynos serving")
    load = deploy_under_load(swarm_platform, app, timeout=120)
    assert load.failures() == [], load.failures()[:5]
    assert {row.release_version for row in swarm_platform.dynos(app)} == {3}


def test_a_web_process_that_never_binds_gets_r10_and_one_that_exits_crashes_and_is_restarted(
        swarm_platform: RunPlatform, swarm_cluster: Cluster) -> None:
    app = "swarm-crash"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app, processes={"web": "echo booting; sleep 600",
                                          "worker": "echo working; sleep 2; exit 3"})
    swarm_platform.scale(app, worker=1)

    def said(text: str) -> bool:
        return any(text in line for line in swarm_platform.log(app))
    eventually(lambda: said("heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within "
                            "8 seconds of launch"), timeout=FIRST_PULL, what="R10 for web.1")
    assert said("app[web.1]: booting")
    eventually(lambda: said("heroku[worker.1]: Process exited with status 3") and said(
        "heroku[worker.1]: State changed from up to crashed"), timeout=60, what="worker.1 crashing")
    eventually(lambda: sum("app[worker.1]: working" in line for line in swarm_platform.log(app)) >= 2,
               timeout=60, what="worker.1 restarted after its crash")
    assert swarm_platform.status(app) == 503  # H10 or H14: never an answer from a dyno that is not up
    app_id = swarm_platform.call("GET", f"/apps/{app}").json()["id"]
    assert swarm_platform.call("DELETE", f"/apps/{app}").status_code == 200
    eventually(lambda: not swarm_cluster.manager.docker("service", "ls", "--filter", f"label=berth.app_id={app_id}",
                                                        "--format", "{{.Name}}").stdout.split(),
               timeout=30, what="the app's services removed with it")


def test_a_detached_one_off_dyno_runs_as_a_swarm_task_into_the_apps_log(
        swarm_platform: RunPlatform, swarm_cluster: Cluster, swarm_rendezvous: object) -> None:
    app = "swarm-one-off"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app)
    made = swarm_platform.call("POST", f"/apps/{app}/dynos",
                               {"command": "echo detached as $DYNO in $(hostname); sleep 2; exit 4", "attach": False})
    assert made.status_code == 201, made.text
    name = made.json()["name"]

    def one_off_services() -> list[str]:
        return swarm_cluster.manager.docker("service", "ls", "--filter", "label=berth.one_off", "--format",
                                            "{{.Name}}").stdout.split()

    def one_off_container() -> str | None:
        """The container the one-off's task runs in, once Swarm has started it."""
        for service in one_off_services():
            found = swarm_cluster.manager.docker("service", "ps", "--no-trunc", "--format", "{{.ID}}", service,
                                                 check=False).stdout.split()
            for task in found:
                inspected = swarm_cluster.manager.docker("inspect", "--format",
                                                         "{{.Status.ContainerStatus.ContainerID}}", task, check=False)
                if inspected.stdout.strip() not in ("", "<no value>"):
                    return inspected.stdout.strip()
        return None
    container = eventually(one_off_container, timeout=FIRST_PULL, interval=0.1, what="the one-off's task on the swarm")
    eventually(lambda: any(f"heroku[{name}]: State changed from up to complete" in line
                           for line in swarm_platform.log(app)), timeout=60, what="the one-off's end in the log")
    lines = swarm_platform.log(app)
    assert any(f"app[{name}]: detached as {name} in {container[:12]}" in line for line in lines), lines
    assert any(f"heroku[{name}]: Process exited with status 4" in line for line in lines)
    eventually(lambda: one_off_services() == [], timeout=30, what="the one-off's service removed")
