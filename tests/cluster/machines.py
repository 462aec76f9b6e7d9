"""Test "machines" on one box: network namespaces on 198.51.100.0/24 (documentation-only, never
routed), each with its own dockerd, joined into one Docker Swarm, with Debian's `docker-registry` on
the first. Used by the pytest fixtures in tests/cluster/conftest.py and by bench/scale.py.

API (kept small and stable; see tests/cluster/test_harness.py for a use):

    with start_cluster(machines=2, registry_storage=None) as cluster:   # 2 or 3 machines; needs root,
                                                    #   dockerd, docker-registry; storage: keep images across runs
        cluster.machines                            # [Machine m1, m2, ...]; m1 is the Swarm's only manager,
                                                    #   the others join as workers (freeze a worker, never m1)
        cluster.manager                             # m1: create services through its client
        cluster.registry                            # "198.51.100.1:5000": every daemon trusts it (insecure, http)
        cluster.root_address                        # the root namespace's address on the machines' network
        machine.name, machine.address               # "m2", "198.51.100.2"
        machine.client()                            # docker.DockerClient on that machine's daemon
        machine.base_url                            # "unix:///…/docker.sock"
        machine.docker("service", "ls")             # the docker CLI against that daemon (CompletedProcess)
        cluster.freeze(machine) / cluster.thaw(machine)          # SIGSTOP-like: the machine hangs
        cluster.cut_link(machine) / cluster.restore_link(machine)  # its network cable is pulled
        cluster.heal()                                  # thaw all, restore all links, wait for all nodes
        push_busybox_image(cluster) -> "198.51.100.1:5000/berth-test/busybox:1"   # a ~1 MB test image
        remove_services(cluster)                        # every service gone, their containers too

Fixtures (tests/cluster/conftest.py; import them into a test module, as tests import stack_root):
`swarm_cluster` (session, 2 machines), `swarm_cluster_three` (module, 3 machines, started only if
asked for), `swarm` (per test: the 2-machine cluster, healed and emptied of services after the test),
`swarm_stack_image` (session: the stack image in swarm_cluster's registry; its registry's storage is
kept in .cache/swarm-registry across runs). Mark such tests `slow` and `swarm`.

`freeze` stops every process of the machine at once with the cgroup freezer: its dockerd, containerd,
the containers' shims and the containers themselves (and m1's registry), as a hung machine would.
The kernel still completes TCP handshakes on its listening sockets, but nothing answers. `cut_link`
takes the machine's only link down instead: its processes run on but nothing reaches it.

Addresses: eight clusters can run at once on one box (two CI runs, several xdist workers, a test
that starts one more), each in a slot of its own, a /27: slot k uses 198.51.100.(32k+1…3) for its
machines and 198.51.100.(32k+30) for the root namespace, so slot 0 (the usual one) has
m1 = 198.51.100.1 and the registry at 198.51.100.1:5000. Read addresses from the objects, never
assume slot 0. A slot is held by an flock for the cluster's life; a slot whose lock is free but
whose namespaces, links, cgroups or data are still there is a leftover of a killed run, and is
cleaned away before use. Every name carries the slot and a per-run id.

Layout of one cluster (names for slot 0, run id abcdef):
    namespace berth-test-s0-abcdef-hub   a bridge joining the machines and the root namespace
    namespace berth-test-s0-abcdef-m1    eth0 198.51.100.1/27, dockerd, docker-registry
    namespace berth-test-s0-abcdef-m2    eth0 198.51.100.2/27, dockerd
    root namespace                       b0abcdefrt 198.51.100.30/27 (reaches tasks published mode=host)
    cgroup /berth-test-s0-abcdef-m1      every process of m1 (the freezer's unit), and the containers'
                                         cgroup parent
    $TMPDIR/berth-test-s0-abcdef/        the daemons' data, exec roots, sockets and logs
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

import docker
import requests

__all__ = ["ClusterError", "Machine", "Cluster", "start_cluster", "clean_leftovers", "missing_tools",
           "push_busybox_image", "remove_services",
           "DOCKERD", "REGISTRY_PORT"]

DOCKERD = "/usr/sbin/dockerd"
REGISTRY_BINARY = "/usr/bin/docker-registry"
# Debian's docker.io client; the machine image may put another one first on PATH.
DOCKER_CLI = next((p for p in ("/usr/bin/docker", shutil.which("docker")) if p and os.path.exists(p)), "docker")
REGISTRY_PORT = 5000
SLOTS = 8
PREFIX = "berth-test"
LOCK_DIR = Path("/run/lock")
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
START_TIMEOUT = 60.0


class ClusterError(RuntimeError):
    """The cluster could not be started or operated; the message says what failed and where its log is."""


def missing_tools() -> list[str]:
    """What this host lacks to start a cluster (empty: it can)."""
    missing = [] if os.geteuid() == 0 else ["root"]
    for tool in (DOCKERD, REGISTRY_BINARY, "/usr/bin/containerd", shutil.which("ip") or "/usr/sbin/ip",
                 shutil.which("nsenter") or "/usr/bin/nsenter", shutil.which("unshare") or "/usr/bin/unshare"):
        if not os.path.exists(tool):
            missing.append(tool)
    return missing


def _slot_addresses(slot: int) -> tuple[str, list[str], str]:
    base = 32 * slot
    return f"198.51.100.{base}/27", [f"198.51.100.{base + i}" for i in (1, 2, 3)], f"198.51.100.{base + 30}"


def _run(argv: list[str], check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(["ip", *args], check=check)


# ---------------------------------------------------------------------------------------------- cgroups

def _freezer_hierarchy() -> tuple[int, Path]:
    """(1, v1 freezer mount) or (2, the unified mount): where a machine's processes are grouped."""
    v1 = CGROUP_ROOT / "freezer"
    if (v1 / "cgroup.procs").exists():
        return 1, v1
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return 2, CGROUP_ROOT
    raise ClusterError("no cgroup freezer on this host (neither v1 freezer nor cgroup v2)")


def _v1_hierarchies() -> list[Path]:
    """Every v1 hierarchy where dockerd's cgroupfs driver makes the containers' cgroups."""
    if not (CGROUP_ROOT / "freezer" / "cgroup.procs").exists():
        return [CGROUP_ROOT] if (CGROUP_ROOT / "cgroup.controllers").exists() else []
    return [p for p in CGROUP_ROOT.iterdir() if p.is_dir() and (p / "cgroup.procs").exists()]


def _cgroup_pids(group: Path) -> list[int]:
    pids: list[int] = []
    for directory, _dirs, files in os.walk(group):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                pids += [int(p) for p in Path(directory, "cgroup.procs").read_text().split()]
    return pids


def _set_frozen(group: Path, frozen: bool) -> None:
    version, _ = _freezer_hierarchy()
    if version == 1:
        (group / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
        wanted = "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + 10
        while (group / "freezer.state").read_text().strip() != wanted:
            if time.monotonic() > deadline:
                raise ClusterError(f"{group} did not become {wanted}")
            time.sleep(0.02)
    else:
        (group / "cgroup.freeze").write_text("1" if frozen else "0")


def _remove_cgroup_tree(group: Path) -> None:
    """rmdir bottom-up (cgroup directories cannot be removed with their files)."""
    if not group.is_dir():
        return
    for directory, dirs, _files in os.walk(group, topdown=False):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(directory, name))
    with contextlib.suppress(OSError):
        os.rmdir(group)


def _kill_cgroup(group: Path) -> None:
    """SIGKILL everything in `group` (frozen or not) and wait until it is empty."""
    if not group.is_dir():
        return
    deadline = time.monotonic() + 20
    while True:
        pids = _cgroup_pids(group)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError, ClusterError):
            _set_frozen(group, False)  # a frozen process only dies once thawed
        if time.monotonic() > deadline:
            raise ClusterError(f"processes {pids} in {group} survive SIGKILL")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------- machines

@dataclass
class Machine:
    name: str            # m1, m2, m3
    netns: str
    address: str
    directory: Path
    cgroup: str          # relative to each hierarchy's root, e.g. berth-test-s0-abcdef-m1
    host_link: str       # its veth's end in the hub namespace (what cut_link takes down)
    hub: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        return self.directory / "dockerd.log"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.base_url, timeout=timeout)

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this machine's daemon."""
        return _run([DOCKER_CLI, "-H", self.base_url, *args], check=check, timeout=timeout)

    def run_in_namespace(self, argv: list[str], check: bool = True, timeout: float = 30
                         ) -> subprocess.CompletedProcess[str]:
        """`argv` inside this machine's network namespace (e.g. curl a task from the machine itself)."""
        return _run(["ip", "netns", "exec", self.netns, *argv], check=check, timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


@dataclass
class Cluster:
    slot: int
    run_id: str
    directory: Path
    machines: list[Machine]
    root_address: str
    root_link: str
    hub: str
    registry: str
    _lock: IO[str] | None = field(default=None, repr=False)

    @property
    def manager(self) -> Machine:
        return self.machines[0]

    def machine(self, name: str) -> Machine:
        return next(m for m in self.machines if m.name == name)

    def freeze(self, machine: Machine) -> None:
        """Stop every process of `machine` (daemon, containerd, shims, containers, registry) at once."""
        _, mount = _freezer_hierarchy()
        _set_frozen(mount / machine.cgroup, True)

    def thaw(self, machine: Machine) -> None:
        _, mount = _freezer_hierarchy()
        _set_frozen(mount / machine.cgroup, False)

    def cut_link(self, machine: Machine) -> None:
        """Take the machine's only link down: it runs on, unreachable and reaching nothing."""
        _ip("-n", self.hub, "link", "set", machine.host_link, "down")

    def restore_link(self, machine: Machine) -> None:
        _ip("-n", self.hub, "link", "set", machine.host_link, "up")

    def heal(self, timeout: float = 60) -> None:
        """Thaw every machine, restore every link, and wait until every node is ready again."""
        _, freezer = _freezer_hierarchy()
        for machine in self.machines:
            _set_frozen(freezer / machine.cgroup, False)
            self.restore_link(machine)
        _wait_for_nodes(self, timeout)

    def stop(self) -> None:
        """Remove everything the cluster made; safe to call twice and after a failed start."""
        try:
            _clean_slot(self.slot)
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None


# ---------------------------------------------------------------------------------------------- leftovers

def _slot_prefix(slot: int) -> str:
    return f"{PREFIX}-s{slot}-"


def _link_pattern(slot: int) -> re.Pattern[str]:
    return re.compile(rf"^b{slot}[0-9a-f]{{6}}(rt|m\d)$")


def _clean_slot(slot: int) -> None:
    """Remove every trace of a cluster in `slot`: processes, namespaces, links, cgroups, data."""
    prefix = _slot_prefix(slot)
    namespaces = [p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix)] if NETNS_DIR.is_dir() else []
    hierarchies = _v1_hierarchies()
    groups = [h / name for h in hierarchies if h.is_dir() for name in os.listdir(h) if name.startswith(prefix)]
    with contextlib.suppress(ClusterError):
        _, freezer = _freezer_hierarchy()
        for group in groups:
            if group.parent == freezer:
                _kill_cgroup(group)
    # Anything else left in the namespaces (a process that escaped its cgroup) goes too.
    for name in namespaces:
        pids = _ip("netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    for group in groups:
        _kill_cgroup(group)
        _remove_cgroup_tree(group)
    for name in namespaces:
        _ip("netns", "delete", name, check=False)
    pattern = _link_pattern(slot)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            link = parts[1].strip().split("@")[0]
            if pattern.match(link):
                _ip("link", "delete", link, check=False)
    for directory in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        _remove_data(directory)


def _remove_data(directory: Path) -> None:
    """Delete a cluster's data dir, never through a mount that is still there. Its daemons' image
    layers are gigabytes of small files: it is renamed at once (so it is gone under its name) and
    deleted by a detached `rm`, so no test waits for the disk; a later start removes what remains."""
    inside = str(directory.resolve()) + "/"
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            point = line.split()[4]
            if (point + "/").startswith(inside):
                _run(["umount", "--lazy", point], check=False)
    trash = directory.with_name(f"{directory.name}.removing-{secrets.token_hex(3)}")
    try:
        os.rename(directory, trash)
    except FileNotFoundError:
        return
    subprocess.run(["sh", "-c", 'rm -rf --one-file-system -- "$1" >/dev/null 2>&1 &', "sh", str(trash)],
                   check=False, stdin=subprocess.DEVNULL)


def clean_leftovers() -> list[int]:
    """Clean every slot no live run holds; return the slots cleaned. Slots in use are left alone."""
    cleaned = []
    for slot in range(SLOTS):
        lock = _try_lock(slot)
        if lock is not None:
            try:
                _clean_slot(slot)
                cleaned.append(slot)
            finally:
                lock.close()
    return cleaned


def _try_lock(slot: int) -> IO[str] | None:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    handle = open(LOCK_DIR / f"{PREFIX}-cluster-s{slot}.lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


# ---------------------------------------------------------------------------------------------- start

@contextlib.contextmanager
def start_cluster(machines: int = 2, registry_storage: Path | None = None) -> Iterator[Cluster]:
    """A running Swarm of `machines` (2 or 3) machines; everything is removed on exit.
    `registry_storage`: a directory the registry keeps its images in across runs (the stack image
    is ~800 MB: pushing it costs ~35 s), instead of one under the cluster's data."""
    cluster = _start(machines, registry_storage)
    try:
        yield cluster
    finally:
        cluster.stop()


def _start(count: int, registry_storage: Path | None = None) -> Cluster:
    if count not in (2, 3):
        raise ValueError("a cluster has 2 or 3 machines")
    missing = missing_tools()
    if missing:
        raise ClusterError(f"cannot start a cluster, missing: {', '.join(missing)} (run `make setup` as root)")
    clean_leftovers()
    lock, slot = None, -1
    for candidate in range(SLOTS):
        lock = _try_lock(candidate)
        if lock is not None:
            slot = candidate
            break
    if lock is None:
        raise ClusterError(f"all {SLOTS} cluster slots are in use by other runs")
    run_id = secrets.token_hex(3)
    name = f"{_slot_prefix(slot)}{run_id}"
    subnet, addresses, root_address = _slot_addresses(slot)
    prefix_len = subnet.split("/")[1]
    directory = Path(tempfile.gettempdir()) / name
    directory.mkdir(mode=0o711)
    cluster = Cluster(slot=slot, run_id=run_id, directory=directory, machines=[], root_address=root_address,
                      root_link=f"b{slot}{run_id}rt", hub=f"{name}-hub",
                      registry=f"{addresses[0]}:{REGISTRY_PORT}", _lock=lock)
    try:
        _make_network(cluster, count, addresses, prefix_len)
        for machine in cluster.machines:
            _start_dockerd(cluster, machine)
        for machine in cluster.machines:
            _wait_for_daemon(machine)
        _start_registry(cluster, registry_storage)
        _form_swarm(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _make_network(cluster: Cluster, count: int, addresses: list[str], prefix_len: str) -> None:
    hub = cluster.hub
    _ip("netns", "add", hub)
    _ip("-n", hub, "link", "set", "lo", "up")
    _ip("-n", hub, "link", "add", "hub", "type", "bridge")
    _ip("-n", hub, "link", "set", "hub", "up")
    # The root namespace's own leg: tests and Berth's router reach tasks through it.
    _ip("link", "add", cluster.root_link, "type", "veth", "peer", "name", "root", "netns", hub)
    _ip("-n", hub, "link", "set", "root", "master", "hub", "up")
    _ip("addr", "add", f"{cluster.root_address}/{prefix_len}", "dev", cluster.root_link)
    _ip("link", "set", cluster.root_link, "up")
    base = f"{_slot_prefix(cluster.slot)}{cluster.run_id}"
    for index in range(count):
        name = f"m{index + 1}"
        machine = Machine(name=name, netns=f"{base}-{name}", address=addresses[index],
                          directory=cluster.directory / name, cgroup=f"{base}-{name}", host_link=name, hub=hub)
        machine.directory.mkdir(mode=0o711)  # the registry account passes through m1's
        _ip("netns", "add", machine.netns)
        _ip("-n", machine.netns, "link", "set", "lo", "up")
        _ip("-n", hub, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", machine.netns)
        _ip("-n", hub, "link", "set", name, "master", "hub", "up")
        _ip("-n", machine.netns, "addr", "add", f"{machine.address}/{prefix_len}", "dev", "eth0")
        _ip("-n", machine.netns, "link", "set", "eth0", "up")
        cluster.machines.append(machine)


def _make_machine_cgroup(machine: Machine) -> Path:
    """The machine's cgroup in the freezer hierarchy, with a child its daemons start in (the
    containers' cgroups are made beside it by dockerd: --cgroup-parent)."""
    _, freezer = _freezer_hierarchy()
    daemons = freezer / machine.cgroup / "daemons"
    daemons.mkdir(parents=True, exist_ok=True)
    return daemons


# Joins the cgroup named by $1, then execs the rest; no string is built from input.
_JOIN_AND_EXEC = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
_HOSTNAME_AND_EXEC = 'hostname "$1" && shift && exec "$@"'


def _in_machine(machine: Machine, group: Path, argv: list[str]) -> list[str]:
    """argv run inside the machine: its cgroup, a mount and UTS namespace of its own, its network."""
    return ["sh", "-c", _JOIN_AND_EXEC, "sh", str(group),
            "unshare", "--mount", "--uts", "--propagation", "slave",
            "nsenter", f"--net={NETNS_DIR / machine.netns}",
            "sh", "-c", _HOSTNAME_AND_EXEC, "sh", machine.name, *argv]


def _start_dockerd(cluster: Cluster, machine: Machine) -> None:
    index = int(machine.name[1:])
    config = machine.directory / "daemon.json"
    config.write_text("{}\n")  # never the host's /etc/docker/daemon.json
    argv = [DOCKERD, "--config-file", str(config),
            "--data-root", str(machine.directory / "data"), "--exec-root", str(machine.directory / "exec"),
            "--pidfile", str(machine.directory / "dockerd.pid"), "-H", machine.base_url,
            "--bip", f"198.18.{index}.1/24", "--default-address-pool", f"base=198.18.{100 + index}.0/24,size=28",
            "--cgroup-parent", f"/{machine.cgroup}", "--insecure-registry", cluster.registry,
            "--log-level", "warn", "--userland-proxy=false"]
    group = _make_machine_cgroup(machine)
    with open(machine.log_path, "ab") as log:
        machine.process = subprocess.Popen(_in_machine(machine, group, argv), stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_until_serving(process: subprocess.Popen[bytes], answers: Callable[[], bool], what: str,
                        log: Callable[[], str]) -> None:
    """Wait until `answers()`; fail with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise ClusterError(f"{what} exited ({process.returncode}):\n{log()}")
        with contextlib.suppress(Exception):
            if answers():
                return
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} did not answer in {START_TIMEOUT:.0f} s:\n{log()}")
        time.sleep(0.05)


def _wait_for_daemon(machine: Machine) -> None:
    def answers() -> bool:
        with contextlib.closing(machine.client(timeout=5)) as client:
            return machine.socket.exists() and bool(client.ping())

    assert machine.process is not None
    _wait_until_serving(machine.process, answers, f"dockerd of {machine.name}", machine.log_tail)


def _start_registry(cluster: Cluster, storage: Path | None) -> None:
    """Debian's docker-registry on m1, as an unprivileged account, storing under the cluster's data
    or in `storage`."""
    from berth.supervise.accounts import service_account

    m1 = cluster.manager
    account = service_account("berth-registry")
    root = m1.directory / "registry"
    root.mkdir()
    account.own(root)
    if storage is None:
        storage = root / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    account.own_tree(storage)
    account.let_through(storage)
    account.let_through(root)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {cluster.registry}\n")
    os.chmod(config, 0o644)
    group = _make_machine_cgroup(m1)
    argv = ["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups",
            REGISTRY_BINARY, "serve", str(config)]
    with open(root / "registry.log", "ab") as log:
        process = subprocess.Popen(_in_machine(m1, group, argv), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "HOME": "/nonexistent"})
    _wait_until_serving(process, lambda: requests.get(f"http://{cluster.registry}/v2/", timeout=1).ok,
                        f"docker-registry on {cluster.registry}",
                        lambda: (root / "registry.log").read_text(errors="replace")[-2000:])


def _form_swarm(cluster: Cluster) -> None:
    """m1 inits (the only manager: a frozen worker never costs the Swarm its quorum), the rest join
    as workers. A short heartbeat makes a dead machine count as down in seconds."""
    manager = cluster.manager
    with contextlib.closing(manager.client()) as client:
        client.swarm.init(advertise_addr=manager.address, listen_addr=f"{manager.address}:2377",
                          default_addr_pool=["198.19.0.0/16"], subnet_size=24,
                          dispatcher_heartbeat_period=2_000_000_000)
        token = client.swarm.attrs["JoinTokens"]["Worker"]
    for machine in cluster.machines[1:]:
        with contextlib.closing(machine.client()) as client:
            client.swarm.join(remote_addrs=[f"{manager.address}:2377"], join_token=token,
                              listen_addr=f"{machine.address}:2377", advertise_addr=machine.address)
    _wait_for_nodes(cluster, START_TIMEOUT)


def _wait_for_nodes(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with contextlib.closing(cluster.manager.client()) as client:
        while True:
            ready = [n for n in client.nodes.list() if n.attrs["Status"]["State"] == "ready"]
            if len(ready) == len(cluster.machines):
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"only {len(ready)} of {len(cluster.machines)} nodes are ready")
            time.sleep(0.1)


# ---------------------------------------------------------------------------------------------- helpers

BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = ("sh", "hostname", "httpd", "mkdir", "cat", "echo", "sleep", "id", "wget", "ls")


def push_busybox_image(cluster: Cluster, repository: str = "berth-test/busybox", tag: str = "1") -> str:
    """A ~1 MB image of Debian's static busybox (sh, httpd, wget, …) in the cluster's registry, for tests
    that need some container but not the stack; returns its reference. Idempotent."""
    import io
    import tarfile

    if not BUSYBOX.is_file():
        raise ClusterError(f"{BUSYBOX} is missing: install busybox-static (scripts/install-system-packages.sh)")
    reference = f"{cluster.registry}/{repository}:{tag}"
    with contextlib.closing(cluster.manager.client()) as client:
        if client.images.list(name=reference):
            return reference
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for directory in ("bin", "tmp", "www"):
                entry = tarfile.TarInfo(directory)
                entry.type, entry.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
                tar.addfile(entry)
            tar.add(BUSYBOX, arcname="bin/busybox")
            for applet in BUSYBOX_APPLETS:
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
                tar.addfile(link)
        client.api.import_image_from_data(archive.getvalue(), repository=f"{cluster.registry}/{repository}",
                                          tag=tag, changes=['ENV PATH=/bin', 'CMD ["/bin/sh"]'])
        for line in client.images.push(f"{cluster.registry}/{repository}", tag=tag, stream=True, decode=True):
            if "error" in line:
                raise ClusterError(f"pushing {reference} failed: {line['error']}")
    return reference


def remove_services(cluster: Cluster, keep: set[str] = frozenset(), timeout: float = 30) -> None:
    """Remove every Swarm service and overlay network not in `keep` (ids), and wait until their
    containers are gone on every machine, so the next test starts on an empty cluster."""
    with contextlib.closing(cluster.manager.client()) as client:
        for service in client.services.list():
            if service.id not in keep:
                service.remove()
        for network in client.networks.list(filters={"driver": "overlay"}):
            if network.id not in keep and network.name != "ingress":
                with contextlib.suppress(docker.errors.APIError):
                    network.remove()
    deadline = time.monotonic() + timeout
    for machine in cluster.machines:
        with contextlib.closing(machine.client()) as client:
            # Their tasks are shutting down; do not wait out each one's stop grace period.
            while found := client.containers.list(all=True, filters={"label": "com.docker.swarm.service.id"}):
                for container in found:
                    with contextlib.suppress(docker.errors.APIError):
                        container.remove(force=True)
                if time.monotonic() > deadline:
                    raise ClusterError(f"service containers on {machine.name} outlived their services")
                time.sleep(0.1)
