"""The Swarm backend's pure parts: the service spec, task states as dyno states, lifecycle lines,
log frames, and the settings that choose the runner."""
from __future__ import annotations

import re

import pytest

from berth.config import load_settings
from berth.platform.dynos.backend import DynoSize, DynoStatus
from berth.platform.dynos.swarm import TaskFacts, _dyno_state, _Node, _time
from berth.platform.dynos.swarm_lifecycle import lifecycle_lines
from berth.platform.dynos.swarm_logs import parse_frame
from berth.platform.dynos.swarm_spec import DYNO_PORT, ServiceSpec, service_name

APP = "0b6a3f3e-5d1c-4b8e-9a55-6c2f7d3e1a90"


def spec(**changes) -> ServiceSpec:
    values = dict(app_id=APP, process_type="web", quantity=3, command="python3 server.py",
                  size=DynoSize("standard-1x", 512 << 20, 1024 << 20, 256), size_key="standard-1x",
                  release_id="r1", release_version=4, image="198.51.100.1:5000/berth/app:abc",
                  env={"SECRET": "s3cret", "PORT": "1", "DYNO": "x"}, boot_timeout=7)
    values.update(changes)
    return ServiceSpec(**values)


def test_a_web_service_publishes_port_in_host_mode_with_a_health_check_and_rolls_start_first() -> None:
    body = spec().body()
    container = body["TaskTemplate"]["ContainerSpec"]
    assert body["Mode"] == {"Replicated": {"Replicas": 3}}
    assert body["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": DYNO_PORT, "PublishMode": "host"}]}  # ephemeral port per task
    assert body["UpdateConfig"]["Order"] == "start-first" and body["UpdateConfig"]["Parallelism"] == 1
    assert "$PORT" in container["Healthcheck"]["Test"][-1]
    assert container["Healthcheck"]["StartPeriod"] == 7 * 10**9  # the boot timeout, then R10
    # Berth's PORT and DYNO win over the config's; DYNO is the task's slot.
    assert f"PORT={DYNO_PORT}" in container["Env"] and "DYNO=web.{{.Task.Slot}}" in container["Env"]
    assert "SECRET=s3cret" in container["Env"] and "PORT=1" not in container["Env"]
    assert container["User"] != "" and not container["User"].startswith("0")
    assert body["TaskTemplate"]["Resources"]["Limits"] == {"MemoryBytes": 1024 << 20, "Pids": 256}
    assert "s3cret" not in repr(spec())


def test_a_worker_has_no_port_and_no_health_check_and_names_fit_swarm() -> None:
    body = spec(process_type="worker_long_name_of_thirty_ch").body()
    assert body["EndpointSpec"] == {"Mode": "dnsrr"}
    assert "Healthcheck" not in body["TaskTemplate"]["ContainerSpec"]
    dns_label = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    assert dns_label.match(body["Name"]), body["Name"]
    assert dns_label.match(service_name(APP, "run.4520"))
    assert service_name(APP, "web") != service_name("1" + APP[1:], "web")
    assert service_name(APP, "a_b") != service_name(APP, "a-b")


def test_only_a_new_release_or_config_changes_the_spec_hash_not_the_count() -> None:
    assert spec().spec_hash() == spec(quantity=9).spec_hash()
    assert spec().spec_hash() != spec(release_version=5).spec_hash()
    assert spec().spec_hash() != spec(env={"SECRET": "other"}).spec_hash()


NODES = {"n1": _Node("198.51.100.1", True, "m1"), "n2": _Node("198.51.100.2", False, "m2")}


@pytest.mark.parametrize("state, desired, node, newest, expected", [
    ("running", "running", "n1", True, "up"),
    ("starting", "running", "n1", True, "starting"),  # a web task until its health check passes
    ("pending", "running", "n1", True, "starting"),
    ("failed", "running", "n1", True, "crashed"),
    ("failed", "running", "n1", False, "down"),  # older history of the slot
    ("running", "shutdown", "n1", True, "down"),  # replaced by a rolling update: never routed
    ("running", "running", "n2", True, "down"),  # its machine went away
    ("shutdown", "shutdown", "n1", True, "down"),
])
def test_task_states_become_dyno_states(state: str, desired: str, node: str, newest: bool, expected: str) -> None:
    task = {"Status": {"State": state}, "DesiredState": desired, "NodeID": node}
    assert _dyno_state(task, NODES, newest) == expected


def facts(state: str, task_state: str, exit_status: int | None = None, error: str = "") -> TaskFacts:
    status = DynoStatus("t1", APP, "web.2", state, exit_status, None, 0.0, 4)
    return TaskFacts(status, "svc", "python3 server.py", "standard-1x", "r1", task_state, error, "m1")


def test_lifecycle_lines_follow_heroku() -> None:
    assert lifecycle_lines(None, facts("starting", "starting"), boot_timeout=60) == [
        "Starting process with command `python3 server.py`"]
    assert lifecycle_lines(None, facts("up", "running"), boot_timeout=60, adopted=True) == []
    assert lifecycle_lines(facts("starting", "starting"), facts("up", "running"), boot_timeout=60) == [
        "State changed from starting to up"]
    assert lifecycle_lines(facts("up", "running"), facts("crashed", "failed", 1, "task: non-zero exit (1)"),
                           boot_timeout=60) == ["Process exited with status 1", "State changed from up to crashed"]
    assert lifecycle_lines(facts("starting", "starting"), facts("crashed", "failed", 137, "container unhealthy"),
                           boot_timeout=3) == [
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 3 seconds of launch",
        "Stopping process with SIGKILL", "Process exited with status 137", "State changed from starting to crashed"]
    assert lifecycle_lines(facts("up", "running"), facts("down", "running"), boot_timeout=60) == [
        "Stopping all processes with SIGTERM"]
    assert lifecycle_lines(facts("down", "running"), facts("down", "shutdown", 0), boot_timeout=60) == [
        "Process exited with status 0"]


def test_log_frames_name_their_task_and_keep_nanosecond_times() -> None:
    frame = (b"2026-12-07T22:10:00.123456789Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,"
             b"com.docker.swarm.task.id=t9 listening on 5000\n")
    assert parse_frame(frame) == ("2026-12-07T22:10:00.123456789Z", "t9", "listening on 5000")
    assert parse_frame(b"garbage\n") is None
    assert _time("2026-12-07T22:10:00.5Z") - _time("2026-12-07T22:10:00Z") == pytest.approx(0.5)


def test_swarm_mode_needs_its_endpoint_and_registry() -> None:
    base = {"BERTH_DATA_DIR": "/tmp/x"}
    assert load_settings(base).runner == "local"
    with pytest.raises(ValueError, match="BERTH_DOCKER_HOST"):
        load_settings({**base, "BERTH_RUNNER": "swarm"})
    with pytest.raises(ValueError, match="BERTH_RUNNER"):
        load_settings({**base, "BERTH_RUNNER": "k8s"})
    with pytest.raises(ValueError, match="unix://"):
        load_settings({**base, "BERTH_RUNNER": "swarm", "BERTH_DOCKER_HOST": "/var/run/docker.sock",
                       "BERTH_REGISTRY": "r:5000"})
    settings = load_settings({**base, "BERTH_RUNNER": "swarm", "BERTH_DOCKER_HOST": "unix:///run/d.sock",
                              "BERTH_REGISTRY": "198.51.100.1:5000"})
    assert (settings.runner, settings.docker_host, settings.registry) == (
        "swarm", "unix:///run/d.sock", "198.51.100.1:5000")
