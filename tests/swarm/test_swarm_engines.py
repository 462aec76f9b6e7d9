"""The Swarm runner with each node's own engine (BERTH_SWARM_NODE_ENGINES): R14 and R15 from the
task containers' memory and OOM kills; attached one-offs (`heroku run`) on a swarm machine."""
from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import socket
import ssl
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.cluster.conftest import swarm_cluster, swarm_stack_image  # noqa: F401  (the session's swarm)
from tests.cluster.machines import Cluster, push_busybox_image
from tests.heroku_cli import heroku_cli
from tests.live_server import ROOT, clean_env, free_port
from tests.rendezvous.conftest import read_terminal_until
from tests.runner.conftest import RunPlatform, eventually, running_platform
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = [pytest.mark.slow, pytest.mark.swarm]

FIRST_PULL = 240  # a machine's first task pulls the stack image from the registry
# Over standard-1X's 512 MB quota (R14, said while it holds), then past twice it: the container's
# 1 GB limit, where the kernel kills it (R15).
HOG = ('python3 -c "import time; a = b\'x\' * (700 * 2**20); print(\'holding 700 MB\', flush=True); time.sleep(8); '
       'print(\'growing\', flush=True); b = b\'y\' * (600 * 2**20); time.sleep(60)"')


def engines_of(cluster: Cluster) -> str:
    """BERTH_SWARM_NODE_ENGINES for the cluster: each machine's hostname (its node's) = its dockerd."""
    return ",".join(f"{machine.name}={machine.base_url}" for machine in cluster.machines)


@pytest.fixture(scope="module")
def swarm_platform(stack_root: Path, swarm_cluster: Cluster, swarm_stack_image: str,  # noqa: F811
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPlatform]:
    """As tests/swarm/conftest.py's, with the node engines (conftest's swarm_rendezvous uses this one)."""
    with running_platform(tmp_path_factory.mktemp("swarm-engines"), free_port(), CRASH_COOL_OFF_SECONDS="1",
                          DYNO_BOOT_TIMEOUT_SECONDS="8", RUNNER="swarm", RENDEZVOUS_PORT=str(free_port()),
                          DOCKER_HOST=swarm_cluster.manager.base_url, REGISTRY=swarm_cluster.registry,
                          SWARM_NODE_ENGINES=engines_of(swarm_cluster)) as platform:
        yield platform


def lines_of(platform: RunPlatform, app: str, dyno: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in platform.log(app, dyno=dyno) if " " in line]


def test_a_memory_hog_on_the_swarm_gets_r14_then_r15_and_is_restarted(swarm_platform: RunPlatform) -> None:
    app = "swarm-hog"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app, processes={"web": "python3 server.py", "hog": HOG})
    swarm_platform.scale(app, web=0, hog=1)

    def said(text: str) -> bool:
        return any(text in line for line in lines_of(swarm_platform, app, "hog.1"))
    eventually(lambda: said("heroku[hog.1]: Error R14 (Memory quota exceeded)"), timeout=FIRST_PULL,
               what=f"R14 for hog.1\n{swarm_platform.runner_log()[-3000:]}")
    eventually(lambda: said("heroku[hog.1]: Error R15 (Memory quota vastly exceeded)"), timeout=60,
               what=f"R15 for hog.1\n{swarm_platform.runner_log()[-3000:]}")
    lines = lines_of(swarm_platform, app, "hog.1")
    usage = re.search(r"heroku\[hog\.1\]: Process running mem=(\d+)M\((\d+\.\d)%\)", "\n".join(lines))
    assert usage and int(usage[1]) > 512 and float(usage[2]) > 100, lines  # over standard-1X's 512 MB
    # (The app's own lines come through the manager's log stream, later than the runner's: not ordered.)
    order = [next(i for i, line in enumerate(lines) if text in line) for text in (
        "Error R14 (Memory quota exceeded)", "Error R15 (Memory quota vastly exceeded)",
        "heroku[hog.1]: Stopping process with SIGKILL", "heroku[hog.1]: Process exited with status 137",
        "heroku[hog.1]: State changed from up to crashed")]
    assert order == sorted(order), lines
    # Swarm replaces the crashed task, as Heroku restarts a crashed dyno.
    eventually(lambda: sum("app[hog.1]: holding 700 MB" in line for line in lines_of(swarm_platform, app, "hog.1"))
               >= 2, timeout=60, what="hog.1 restarted after R15")
    swarm_platform.scale(app, hog=0)


def attached_leftovers(cluster: Cluster) -> list[str]:
    """Attached one-off containers still on any machine."""
    return [name for machine in cluster.machines for name in machine.docker(
        "ps", "-a", "--filter", "label=berth.attached_one_off", "--format", "{{.Names}}").stdout.split()]


def machine_of(output: str, cluster: Cluster) -> str | None:
    """The machine whose dockerd made the container the output's /proc/self/cgroup was read in (its
    cgroup parent names the machine); None for a process that ran in no machine's container."""
    return next((machine.name for machine in cluster.machines if f"/{machine.cgroup}/" in output), None)


def test_heroku_run_attaches_to_a_container_on_a_swarm_machine(
        swarm_platform: RunPlatform, swarm_cluster: Cluster, swarm_rendezvous: object,  # noqa: F811
        tmp_path_factory: pytest.TempPathFactory) -> None:
    app = "swarm-attached"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app)
    cli = heroku_cli(swarm_platform.built.server.url, swarm_platform.built.key, tmp_path_factory.mktemp("home"))
    ca = Path(swarm_platform.env["BERTH_DATA_DIR"]) / "ca" / "ca.pem"
    done = cli.run("run", "--exit-code", "-a", app, "--",
                   "read x; echo got $x as $(id -u) in $DYNO; cat /proc/self/cgroup; exit 3",
                   input="hello\n", timeout=FIRST_PULL, NODE_EXTRA_CA_CERTS=str(ca))
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "got hello as 10000 in run.1" in done.stdout, done.stdout
    assert machine_of(done.stdout, swarm_cluster) is not None, done.stdout  # not the local sandbox
    lines = [line for line in lines_of(swarm_platform, app, "run.1")]
    assert lines == ["heroku[run.1]: Starting process with command `read x; echo got $x as $(id -u) in $DYNO; "
                     "cat /proc/self/cgroup; exit 3 ; echo \"\uFFFF heroku-command-exit-status: $?\"`",
                     "heroku[run.1]: State changed from starting to up",
                     "heroku[run.1]: Process exited with status 3",
                     "heroku[run.1]: State changed from up to complete"], lines  # the output stays on the terminal
    assert attached_leftovers(swarm_cluster) == []
    assert swarm_platform.call("GET", f"/apps/{app}/dynos/run.1").json()["state"] == "down"  # as locally


def test_berth_run_on_a_terminal_gets_a_swarm_containers_terminal(
        swarm_platform: RunPlatform, swarm_cluster: Cluster, swarm_rendezvous: object) -> None:  # noqa: F811
    app = "swarm-tty"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app)
    # Without COLUMNS/LINES: xdist's workers set them to 80/24, and the CLI reads the size from them first.
    env = {**{k: v for k, v in clean_env().items() if k not in ("COLUMNS", "LINES")},
           "HOME": str(Path(swarm_platform.env["BERTH_DATA_DIR"]).parent), "TERM": "xterm",
           "BERTH_API_URL": swarm_platform.built.server.url, "BERTH_API_KEY": swarm_platform.built.key,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 77, 0, 0))  # the client's COLUMNS and LINES
    process = subprocess.Popen([sys.executable, "-m", "berth.cli", "run", "-a", app, "--",
                                'test -t 0 && echo "on a tty as $TERM"; cat /proc/self/cgroup; '
                                'read x; stty size; echo "typed $x"; exit 5'],  # size: once typed
                               env=env, cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    deadline = time.monotonic() + FIRST_PULL
    try:
        seen = read_terminal_until(master, b"on a tty as xterm", deadline)
        os.write(master, b"qrs\r")
        seen += read_terminal_until(master, b"typed qrs", deadline)
        assert process.wait(30) == 5, seen
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    assert b"\r\n33 77\r\n" in seen, seen  # the container's terminal has the client's size
    assert seen.count(b"qrs") == 2, seen  # echoed once (the container's terminal), then typed: not twice over
    assert machine_of(seen.decode(errors="replace"), swarm_cluster) is not None, seen
    eventually(lambda: attached_leftovers(swarm_cluster) == [], timeout=10, what="the container removed")


def attach(platform: RunPlatform, made: dict[str, Any]) -> ssl.SSLSocket:
    """A rendezvous client on the dyno `made` (POST /apps/{app}/dynos), past the greeting."""
    host, port = made["attach_url"].split("//", 1)[1].split("/", 1)[0].split(":")
    context = ssl.create_default_context(cafile=str(Path(platform.env["BERTH_DATA_DIR"]) / "ca" / "ca.pem"))
    conn = context.wrap_socket(socket.create_connection((host, int(port)), timeout=FIRST_PULL), server_hostname=host)
    conn.sendall(made["attach_url"].rsplit("/", 1)[1].encode() + b"\r\n")
    assert conn.recv(12) == b"rendezvous\r\n"
    return conn


def receive(conn: ssl.SSLSocket, until: bytes | None = None) -> bytes:
    """What the dyno sends, up to `until` or to its end."""
    received = b""
    while (until is None or until not in received) and (chunk := conn.recv(65536)):
        received += chunk
    return received


def test_an_attached_run_past_its_time_to_live_is_stopped_and_removed(
        swarm_platform: RunPlatform, swarm_cluster: Cluster, swarm_rendezvous: object) -> None:  # noqa: F811
    app = "swarm-ttl"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app)
    made = swarm_platform.call("POST", f"/apps/{app}/dynos", {"command": "echo started; sleep 600", "attach": True,
                                                              "time_to_live": 20}).json()
    with attach(swarm_platform, made) as conn:
        received = receive(conn, b"started\n")
        assert attached_leftovers(swarm_cluster) != []  # running on a machine meanwhile
        received += receive(conn)
    assert received.startswith(b"started\n"), received
    assert b"reached its time limit of 20 s and was stopped" in received, received
    shown = swarm_platform.call("GET", f"/apps/{app}/dynos/{made['name']}").json()
    assert (shown["state"], shown["exit_code"]) == ("crashed", 137), shown
    assert attached_leftovers(swarm_cluster) == []


def test_stopping_an_attached_run_on_the_swarm_ends_it_with_sigterm(
        swarm_platform: RunPlatform, swarm_cluster: Cluster, swarm_rendezvous: object) -> None:  # noqa: F811
    app = "swarm-stop"
    swarm_platform.built.make_app(app)
    swarm_platform.deploy(app)
    made = swarm_platform.call("POST", f"/apps/{app}/dynos", {"command": "echo started; sleep 600",
                                                              "attach": True}).json()
    with attach(swarm_platform, made) as conn:
        assert receive(conn, b"started\n") == b"started\n"
        stopped = swarm_platform.call("POST", f"/apps/{app}/dynos/{made['name']}/actions/stop")
        assert stopped.status_code == 202, stopped.text
        assert receive(conn) == b""  # the process is gone: the session ends
    shown = swarm_platform.call("GET", f"/apps/{app}/dynos/{made['name']}").json()
    assert (shown["state"], shown["exit_code"]) == ("down", 143), shown
    assert attached_leftovers(swarm_cluster) == []


def test_a_new_rendezvous_host_removes_the_attached_containers_its_killed_predecessor_left(
        swarm_cluster: Cluster) -> None:  # noqa: F811
    from berth.platform.dynos.swarm import SwarmBackend
    from berth.platform.dynos.swarm_attach import ATTACHED_LABEL, AttachedOneOffs
    from berth.platform.dynos.swarm_engines import NodeEngines

    image = push_busybox_image(swarm_cluster)
    worker = swarm_cluster.machines[1]
    with contextlib.closing(worker.client()) as client:
        client.images.pull(image)
        ours = client.containers.create(image, ["sleep", "600"], labels={ATTACHED_LABEL: "host-a"})
        ours.start()
        theirs = client.containers.create(image, ["sleep", "600"], labels={ATTACHED_LABEL: "host-b"})
    engines = NodeEngines({machine.name: machine.base_url for machine in swarm_cluster.machines})
    backend = SwarmBackend(swarm_cluster.manager.base_url)
    try:
        assert AttachedOneOffs(backend, engines, lambda checksum: image, "host-a").remove_leftovers() == 1
        assert attached_leftovers(swarm_cluster) == [theirs.name]  # another host's run is left alone
    finally:
        theirs.remove(force=True)
        engines.close()
        backend.close()
