"""The pure parts of the node engines: their setting, the memory measure, R14/R15 decisions and the
lifecycle line of an OOM kill (the live proof is tests/swarm/test_swarm_engines.py)."""
from __future__ import annotations

import pytest

from berth.config import load_settings
from berth.platform.dynos.backend import DynoStatus
from berth.platform.dynos.swarm import TaskFacts
from berth.platform.dynos.swarm_engines import NodeEngines, memory_in_use
from berth.platform.dynos.swarm_lifecycle import lifecycle_lines
from berth.platform.dynos.swarm_memory import memory_lines

BASE = {"BERTH_DATA_DIR": "/tmp/x", "BERTH_RUNNER": "swarm", "BERTH_DOCKER_HOST": "unix:///run/d.sock",
        "BERTH_REGISTRY": "198.51.100.1:5000"}
MB = 2**20


def test_node_engines_are_read_by_node_name_and_never_shown() -> None:
    settings = load_settings({**BASE, "BERTH_SWARM_NODE_ENGINES": " m2=unix:///d2/docker.sock, m1=unix:///d1/s "})
    assert settings.swarm_node_engines == (("m1", "unix:///d1/s"), ("m2", "unix:///d2/docker.sock"))
    assert "docker.sock" not in repr(settings)
    engines = NodeEngines(dict(settings.swarm_node_engines))
    assert engines.nodes == ["m1", "m2"] and engines.knows("m2") and not engines.knows("m3")
    assert "docker.sock" not in repr(engines)
    assert load_settings(BASE).swarm_node_engines == ()  # without it: the manager alone, as before
    assert not NodeEngines({})


@pytest.mark.parametrize("value, complaint", [
    ("m1", "entry 1 must be NODE=ENDPOINT"),
    ("m1=unix:///a,m1=unix:///b", "names node m1 twice"),
    ("m1=/var/run/docker.sock", "node m1's engine must be unix:///PATH"),
    ("m1=tcp://198.51.100.9:2376", "BERTH_SWARM_ENGINE_TLS_DIR"),  # an engine without TLS is root for anyone
])
def test_bad_node_engines_are_refused_without_echoing_the_endpoint(value: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as refused:
        load_settings({**BASE, "BERTH_SWARM_NODE_ENGINES": value})
    assert "198.51.100.9" not in str(refused.value) and "docker.sock" not in str(refused.value)


def test_a_tls_directory_must_hold_the_client_certificate(tmp_path) -> None:
    with pytest.raises(ValueError, match="no ca.pem, cert.pem, key.pem"):
        load_settings({**BASE, "BERTH_SWARM_NODE_ENGINES": "m1=tcp://h:2376",
                       "BERTH_SWARM_ENGINE_TLS_DIR": str(tmp_path)})
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    settings = load_settings({**BASE, "BERTH_SWARM_NODE_ENGINES": "m1=tcp://h:2376",
                              "BERTH_SWARM_ENGINE_TLS_DIR": str(tmp_path)})
    assert settings.swarm_node_engines == (("m1", "tcp://h:2376"),)


def test_memory_is_rss_plus_swap_without_page_cache() -> None:
    v1 = {"memory_stats": {"usage": 900 * MB, "stats": {"total_rss": 600 * MB, "total_swap": 50 * MB,
                                                         "cache": 250 * MB}}}
    assert memory_in_use(v1) == 650 * MB
    assert memory_in_use({"memory_stats": {"usage": 9, "stats": {"anon": 700, "file": 300}}}) == 700
    assert memory_in_use({"memory_stats": {"usage": 900, "stats": {"cache": 100}}}) == 800
    assert memory_in_use({"memory_stats": {}}) is None  # a container that is not running


def test_r14_while_over_quota_when_due_and_r15_at_the_kill_threshold() -> None:
    quota, kill_at = 512 * MB, 1024 * MB
    assert memory_lines(500 * MB, quota, kill_at, r14_due=True) == ()
    assert memory_lines(700 * MB, quota, kill_at, r14_due=True) == (
        "Process running mem=700M(136.7%)", "Error R14 (Memory quota exceeded)")
    assert memory_lines(700 * MB, quota, kill_at, r14_due=False) == ()
    assert memory_lines(1024 * MB, quota, kill_at, r14_due=False) == (
        "Error R15 (Memory quota vastly exceeded)", "Stopping process with SIGKILL")


def facts(state: str, task_state: str, exit_status: int | None = None) -> TaskFacts:
    status = DynoStatus("t1", "app", "hog.1", state, exit_status, None, 0.0, 4)
    return TaskFacts(status, "svc", "python3 hog.py", "standard-1x", "r1", task_state, "", "m1", True, "c1")


def test_an_oom_kill_ends_with_r15_and_other_kills_do_not() -> None:
    before, now = facts("up", "running"), facts("crashed", "failed", 137)
    assert lifecycle_lines(before, now, boot_timeout=60, oom_killed=True) == [
        "Error R15 (Memory quota vastly exceeded)", "Stopping process with SIGKILL",
        "Process exited with status 137", "State changed from up to crashed"]
    assert lifecycle_lines(before, now, boot_timeout=60) == [
        "Process exited with status 137", "State changed from up to crashed"]


def test_a_swarm_managers_failure_does_not_name_its_endpoint() -> None:
    """Its refusals reach tenants' logs (R99): the endpoint, a platform credential, stays out."""
    from berth.platform.dynos.backend import DynoError
    from berth.platform.dynos.swarm import SwarmBackend
    from berth.supervise.ports import free_loopback_port

    port = free_loopback_port()
    backend = SwarmBackend(f"tcp://127.0.0.1:{port}", timeout=2)
    with pytest.raises(DynoError) as failed:
        backend.services()
    assert str(port) not in str(failed.value) and "127.0.0.1" not in str(failed.value), failed.value
    assert "the swarm manager" in str(failed.value)
