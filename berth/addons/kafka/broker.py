"""The embedded single-node Apache Kafka (KRaft) that Berth runs when `BERTH_KAFKA_BOOTSTRAP` names
no cluster (`specs/backends.md` §9).

The jars come from Maven Central (`scripts/fetch-kafka.sh` → `.cache/kafka/<version>/libs`, or
`BERTH_KAFKA_LIBS`). Everything else lives in `data_dir/backends/kafka/`:

- `state.json`: the cluster id and the three loopback ports, chosen once and kept (apps hold the
  tenant port in `KAFKA_URL`, so it must never move);
- `server.properties` + `log4j2.properties`, rewritten on every start; `data/` (formatted once
  with `kafka.tools.StorageTool format --standalone`); `kafka.log` (the JVM's output);
- `tls/broker.pem` (PKCS#8 key + certificate chain for 127.0.0.1 and localhost, signed by the
  add-on's CA) and `ca/` (the CA, see `ca.py`), unless `BERTH_KAFKA_CA_DIR` names another.

Listeners: TENANT (SSL, client certificate required; what apps reach), INTERNAL (PLAINTEXT on
127.0.0.1; Berth administers through it as the super user `User:ANONYMOUS`) and CONTROLLER
(PLAINTEXT on 127.0.0.1). `StandardAuthorizer` with `allow.everyone.if.no.acl.found=false` and
no topic auto-creation: a tenant can do only what its ACLs allow.

The JVM is started detached (its own session, output to kafka.log) from an argv list, so it
outlives the process that started it; `supervise` starts it again when it died.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from berth.addons.kafka import ca as kafka_ca
from berth.config import Settings

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.3.1"  # keep equal to <kafka.version> in pom.xml
REPO_ROOT = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"
# Outside Linux's ephemeral range (32768-60999): an outgoing connection never holds them.
PORTS = range(29092, 29992)
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
JVM_OPTIONS = ("-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
               "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
               "-Djava.awt.headless=true")


class KafkaError(RuntimeError):
    """The embedded broker cannot be set up, started or reached (no secret in the message)."""


@dataclass(frozen=True)
class Endpoints:
    bootstrap: str         # host:port of the mTLS listener apps use
    admin_bootstrap: str   # host:port of the PLAINTEXT loopback listener Berth administers through
    controller: str = ""   # host:port of the PLAINTEXT loopback controller listener (super user too)


# -- places --------------------------------------------------------------------------------------

def root(settings: Settings) -> Path:
    return settings.data_dir / "backends" / "kafka"


def libs_dir() -> Path:
    configured = os.environ.get("BERTH_KAFKA_LIBS")
    return Path(configured) if configured else REPO_ROOT / ".cache" / "kafka" / KAFKA_VERSION / "libs"


def jars_present(libs: Path | None = None) -> bool:
    libs = libs or libs_dir()
    return (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()


def fetch_script() -> Path:
    return REPO_ROOT / "scripts" / "fetch-kafka.sh"


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    for candidate in ("/usr/bin/java", "/usr/local/bin/java"):
        if Path(candidate).is_file():
            return candidate
    raise KafkaError("java is not installed (Kafka 4 needs Java 17+: apt-get install openjdk-17-jre-headless)")


# -- state ---------------------------------------------------------------------------------------

_held = threading.local()
_children: dict[int, subprocess.Popen[bytes]] = {}  # brokers this process started (to reap them)


@contextlib.contextmanager
def _lock(settings: Settings) -> Iterator[None]:
    """One exclusive flock over the embedded broker's files and process, re-entrant per thread."""
    depth = getattr(_held, "depth", 0)
    if depth:
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    path = root(settings) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


def _state_path(settings: Settings) -> Path:
    return root(settings) / "state.json"


def _read_state(settings: Settings) -> dict[str, Any] | None:
    try:
        return json.loads(_state_path(settings).read_text())
    except FileNotFoundError:
        return None


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    path = _state_path(settings)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(temporary, path)


def new_cluster_id() -> str:
    """A Kafka `Uuid` as StorageTool's `random-uuid` prints it (base64url, no padding, not
    starting with '-'), without a JVM launch."""
    while True:
        value = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value


def _bindable(port: int) -> bool:
    try:
        with socket.create_server((HOST, port)):
            return True
    except OSError:
        return False


def _choose_ports(count: int) -> list[int]:
    chosen: list[int] = []
    for port in PORTS:
        if _bindable(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise KafkaError(f"no {count} free ports for Kafka on {HOST} in {PORTS.start}-{PORTS.stop - 1}")


def _ensure_state(settings: Settings) -> dict[str, Any]:
    state = _read_state(settings)
    if state is None:
        tenant, admin, controller = _choose_ports(3)
        state = {"cluster_id": new_cluster_id(), "host": HOST, "tenant_port": tenant,
                 "admin_port": admin, "controller_port": controller, "pid": None,
                 "version": KAFKA_VERSION}
        root(settings).mkdir(parents=True, exist_ok=True)
        _write_state(settings, state)
    return state


def _endpoints_of(state: dict[str, Any]) -> Endpoints:
    host = state["host"]
    return Endpoints(f"{host}:{state['tenant_port']}", f"{host}:{state['admin_port']}",
                     f"{host}:{state['controller_port']}")


def endpoints(settings: Settings) -> Endpoints | None:
    """Where the embedded broker listens, if it was ever set up (nothing is started)."""
    state = _read_state(settings)
    if state is None:
        return None
    return _endpoints_of(state)


# -- configuration -------------------------------------------------------------------------------

def _property_value(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise KafkaError("a value for server.properties contains a newline")
    return value.replace("\\", "\\\\")


def render_properties(settings: Settings, state: dict[str, Any]) -> str:
    base = root(settings)
    host, tenant, admin, controller = state["host"], state["tenant_port"], state["admin_port"], state["controller_port"]
    values = [
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.bootstrap.servers", f"{host}:{controller}"),
        ("listeners", f"INTERNAL://{host}:{admin},CONTROLLER://{host}:{controller},TENANT://{host}:{tenant}"),
        ("advertised.listeners", f"INTERNAL://{host}:{admin},TENANT://{host}:{tenant}"),
        ("listener.security.protocol.map", "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,TENANT:SSL"),
        ("inter.broker.listener.name", "INTERNAL"),
        ("controller.listener.names", "CONTROLLER"),
        ("log.dirs", str(base / "data")),
        ("num.partitions", "1"),
        ("default.replication.factor", "1"),
        ("offsets.topic.replication.factor", "1"),
        ("offsets.topic.num.partitions", "10"),
        ("transaction.state.log.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
        ("transaction.state.log.num.partitions", "10"),
        ("share.coordinator.state.topic.replication.factor", "1"),
        ("share.coordinator.state.topic.min.isr", "1"),
        ("group.initial.rebalance.delay.ms", "0"),
        # A restarted node waits for its previous registration to expire before it serves:
        # short heartbeats keep that wait (9 s by default) to about a second.
        ("broker.heartbeat.interval.ms", "500"),
        ("broker.session.timeout.ms", "1500"),
        ("auto.create.topics.enable", "false"),
        ("delete.topic.enable", "true"),
        ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
        ("allow.everyone.if.no.acl.found", "false"),
        ("super.users", "User:ANONYMOUS"),
        ("listener.name.tenant.ssl.client.auth", "required"),
        ("listener.name.tenant.ssl.keystore.type", "PEM"),
        ("listener.name.tenant.ssl.keystore.location", str(base / "tls" / "broker.pem")),
        ("listener.name.tenant.ssl.truststore.type", "PEM"),
        ("listener.name.tenant.ssl.truststore.location", str(base / "tls" / "ca.pem")),
        ("listener.name.tenant.ssl.enabled.protocols", "TLSv1.3,TLSv1.2"),
        ("ssl.principal.mapping.rules", "RULE:^CN=([^,]+).*$/$1/,DEFAULT"),
    ]
    lines = [f"# Generated by Berth ({KAFKA_VERSION}); rewritten on every start.",
             "# INTERNAL and CONTROLLER are PLAINTEXT, so their principal User:ANONYMOUS is the",
             "# super user: safe only because both listen on loopback."]
    lines += [f"{key}={_property_value(value)}" for key, value in values]
    return "\n".join(lines) + "\n"


LOG4J2 = """\
# Generated by Berth: warnings and the broker's start/stop lines to stdout (kafka.log).
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = STDOUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = info
"""


def _write_tls(settings: Settings) -> None:
    tls = root(settings) / "tls"
    authority = kafka_ca.for_settings(settings)
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "ca.pem").write_text(authority.cert_pem)
    broker_pem = tls / "broker.pem"
    if broker_pem.exists():
        try:
            current = broker_pem.read_text()
            if authority.cert_pem in current:  # still signed by this CA
                return
        except OSError:
            pass
    issued = kafka_ca.issue_server(authority, [HOST, "localhost"])
    kafka_ca.write_private(broker_pem, issued.key_pem + issued.chain_pem)


def _write_config(settings: Settings, state: dict[str, Any]) -> Path:
    base = root(settings)
    (base / "data").mkdir(parents=True, exist_ok=True)
    _write_tls(settings)
    (base / "log4j2.properties").write_text(LOG4J2)
    properties = base / "server.properties"
    properties.write_text(render_properties(settings, state))
    return properties


def _java_argv(main: str, *args: str, settings: Settings, heap: bool = True) -> list[str]:
    libs = libs_dir()
    if not jars_present(libs):
        raise KafkaError(f"the Kafka {KAFKA_VERSION} jars are not in {libs}: run scripts/fetch-kafka.sh")
    options = list(JVM_OPTIONS) if heap else ["-Xmx256m", "-Djava.awt.headless=true"]
    return [java_binary(), *options,
            f"-Dlog4j2.configurationFile={root(settings) / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={root(settings)}",
            "-cp", f"{libs}/*", main, *args]


def _format_storage(settings: Settings, state: dict[str, Any], properties: Path) -> None:
    if (root(settings) / "data" / "meta.properties").exists():
        return
    argv = _java_argv("kafka.tools.StorageTool", "format", "-t", state["cluster_id"], "-c", str(properties),
                      "--standalone", "--ignore-formatted", settings=settings, heap=False)
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise KafkaError(f"formatting Kafka's storage failed: {(result.stderr or result.stdout).strip()[-500:]}")


# -- the process ---------------------------------------------------------------------------------

def _is_ours(settings: Settings, pid: int | None) -> bool:
    """`pid` is alive and is the broker of this data dir (not a reused pid, not a zombie)."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None:
        # Our own child: its exit status says it all (right after exec, /proc/<pid>/cmdline
        # can still read empty).
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(root(settings) / "server.properties").encode() in cmdline


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def _answers(address: str, timeout: float = 5.0) -> bool:
    """The admin listener serves metadata with a broker in it."""
    from confluent_kafka.admin import AdminClient

    if not _listening(address):
        return False
    client = AdminClient({"bootstrap.servers": address, "client.id": "berth-probe",
                          "socket.connection.setup.timeout.ms": 2000})
    try:
        return bool(client.list_topics(timeout=timeout).brokers)
    except Exception:
        return False


def _log_tail(settings: Settings, size: int = 1500) -> str:
    try:
        with open(root(settings) / "kafka.log", "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _start(settings: Settings, state: dict[str, Any], properties: Path) -> int:
    for key in ("tenant_port", "admin_port", "controller_port"):
        if not _bindable(state[key]):
            raise KafkaError(f"port {state[key]} on {HOST} (Kafka's {key.replace('_', ' ')}) is held by "
                             "another process")
    argv = _java_argv("kafka.Kafka", str(properties), settings=settings)
    with open(root(settings) / "kafka.log", "ab") as output:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   cwd=root(settings), start_new_session=True, close_fds=True)
    _children[process.pid] = process
    state["pid"] = process.pid
    _write_state(settings, state)
    log.info("started Kafka %s (pid %d) for %s", KAFKA_VERSION, process.pid, root(settings))
    return process.pid


def _wait_ready(settings: Settings, state: dict[str, Any], timeout: float) -> None:
    admin = f"{state['host']}:{state['admin_port']}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_ours(settings, state.get("pid")):
            child = _children.get(state.get("pid") or 0)
            code = child.poll() if child is not None else None
            raise KafkaError(f"Kafka exited while starting (exit status {code}); the end of its log:\n"
                             f"{_log_tail(settings)}")
        if _answers(admin, timeout=2.0):
            return
        time.sleep(0.2)
    raise KafkaError(f"Kafka did not answer on {admin} within {timeout:.0f} s")


def ensure_embedded(settings: Settings, timeout: float = START_TIMEOUT) -> Endpoints:
    """The embedded broker, set up (ports, CA, broker certificate, formatted storage) and started
    if it is not running; returns once its admin listener answers. Idempotent; a file lock
    makes concurrent callers (threads and processes) wait for one start."""
    with _lock(settings):
        state = _ensure_state(settings)
        found = _endpoints_of(state)
        if _is_ours(settings, state.get("pid")):
            # Running and accepting connections: served before (a start waits for a full answer),
            # so a connect is proof enough and keeps this cheap for every provider call.
            if _listening(found.admin_bootstrap) and _listening(found.bootstrap):
                return found
            _wait_ready(settings, state, timeout)  # still starting (or stuck: then this raises)
            return found
        properties = _write_config(settings, state)
        _format_storage(settings, state, properties)
        _start(settings, state, properties)
        try:
            _wait_ready(settings, state, timeout)
        except KafkaError:
            _terminate(settings, state)
            raise
        return found


def running(settings: Settings) -> bool:
    state = _read_state(settings)
    return bool(state) and _is_ours(settings, state.get("pid"))  # type: ignore[union-attr]


def supervise(settings: Settings) -> Endpoints | None:
    """Start the embedded broker again if it died (nothing when an external cluster is configured)."""
    if settings.kafka_bootstrap:
        return None
    return ensure_embedded(settings)


def _terminate(settings: Settings, state: dict[str, Any], timeout: float = STOP_TIMEOUT) -> None:
    pid = state.get("pid")
    if pid and _is_ours(settings, pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_ours(settings, pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_ours(settings, pid):
            log.warning("Kafka (pid %d) did not stop within %.0f s; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
            while _is_ours(settings, pid):
                time.sleep(0.05)
    child = _children.pop(pid, None) if pid else None
    if child is not None:
        child.poll()  # reaps it: it is gone by now
    state["pid"] = None
    _write_state(settings, state)


def stop(settings: Settings, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the embedded broker (SIGTERM: a controlled shutdown; SIGKILL after `timeout`).
    True when one was running."""
    with _lock(settings):
        state = _read_state(settings)
        if state is None or not _is_ours(settings, state.get("pid")):
            return False
        _terminate(settings, state, timeout)
        return True


class LocalKafka:
    """The embedded broker of one data dir, as an object: `LocalKafka(settings).ensure()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def root(self) -> Path:
        return root(self.settings)

    def ensure(self, timeout: float = START_TIMEOUT) -> Endpoints:
        return ensure_embedded(self.settings, timeout)

    def running(self) -> bool:
        return running(self.settings)

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        return stop(self.settings, timeout)

    def endpoints(self) -> Endpoints | None:
        return endpoints(self.settings)


__all__ = ["Endpoints", "KAFKA_VERSION", "KafkaError", "LocalKafka", "endpoints", "ensure_embedded",
           "fetch_script", "jars_present", "libs_dir", "new_cluster_id", "render_properties", "root",
           "running", "stop", "supervise"]
