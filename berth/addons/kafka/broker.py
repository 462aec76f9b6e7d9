"""The embedded single-node Apache Kafka (KRaft) that Berth runs when `BERTH_KAFKA_BOOTSTRAP` names
no cluster (`specs/backends.md` §9).

The jars come from Maven Central (`scripts/fetch-kafka.sh` → `.cache/kafka/<version>/libs`, or
`BERTH_KAFKA_LIBS`). Everything else lives in `data_dir/backends/kafka/`:

- `state.json`: the cluster id and the three loopback ports, chosen once and kept (apps hold the
  tenant port in `KAFKA_URL`, so it must never move);
- `server.properties` + `log4j2.properties`, rewritten on every start; `data/` (formatted once
  with `kafka.tools.StorageTool format --standalone`); `kafka.log` (the JVM's output);
- `tls/broker.pem` (PKCS#8 key + certificate chain for 127.0.0.1 and localhost, signed by the
  add-on's CA) and `ca/` (the CA, see `ca.py`), unless `BERTH_KAFKA_CA_DIR` names another;
- `tls/internal.pem` + `tls/admin-ca.pem`: the broker's identity on its INTERNAL and CONTROLLER
  listeners, and whom it trusts there; `admin/` (Berth's only): the admin CA and Berth's own
  client certificate.

Listeners: TENANT (SSL, a certificate of the add-on CA required; what apps reach), INTERNAL and
CONTROLLER (SSL on 127.0.0.1, a certificate of the *admin* CA required). Both the broker's own
internal identity and Berth's admin client are `User:berth-kafka-admin`, the one super user: no
listener lets an anonymous client in, and a tenant's certificate is not even accepted by the admin
listeners' TLS. `StandardAuthorizer` with `allow.everyone.if.no.acl.found=false` and no topic
auto-creation: a tenant can do only what its ACLs allow.

The JVM runs as the unprivileged account `berth-kafka` when Berth is root (`berth.supervise.
accounts`): it owns `data/` and `tls/` (keys mode 0600); the CA keys stay Berth's. It is started
detached (its own session, output to kafka.log) from an argv list, so it outlives the process
that started it; `supervise` starts it again when it died.
"""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import os
import random
import shutil
import ssl
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.addons.kafka import ca as kafka_ca
from berth.config import Settings
from berth.supervise import locks, ports, processes, readiness
from berth.supervise.accounts import ServiceAccount, service_account

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.3.1"  # keep equal to <kafka.version> in pom.xml
REPO_ROOT = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"
ACCOUNT = "berth-kafka"              # who the JVM runs as when Berth is root
ADMIN_PRINCIPAL = "berth-kafka-admin"  # the one super user: the broker itself and Berth's admin client
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
    admin_bootstrap: str   # host:port of the mTLS loopback listener Berth administers through
    controller: str = ""   # host:port of the mTLS loopback controller listener (admin certificate too)


# -- places --------------------------------------------------------------------------------------

def root(settings: Settings) -> Path:
    return settings.data_dir / "backends" / "kafka"


def account() -> ServiceAccount:
    return service_account(ACCOUNT)


def admin_dir(settings: Settings) -> Path:
    """Berth's own: the admin CA (key included) and Berth's admin client certificate."""
    return root(settings) / "admin"


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

_children = processes.Children()  # brokers this process started (to reap them)


def _lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """One exclusive flock over the embedded broker's files and process, re-entrant per thread."""
    return locks.file_lock(root(settings) / ".lock")


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


def _choose_ports(count: int) -> list[int]:
    # From a random point of the range: two installations choosing at once (before either broker
    # listens) would otherwise both take the lowest free ports.
    start = random.randrange(len(PORTS))
    candidates = [*PORTS[start:], *PORTS[:start]]
    chosen = list(itertools.islice(ports.free_ports(HOST, candidates), count))
    if len(chosen) < count:
        raise KafkaError(f"no {count} free ports for Kafka on {HOST} in {PORTS.start}-{PORTS.stop - 1}")
    return chosen


def _ensure_state(settings: Settings) -> dict[str, Any]:
    """The broker's state, its ports chosen first if need be; under a lock of its own, not the
    start lock, so the ports are known at once even while another process starts the broker."""
    state = _read_state(settings)
    if state is None:
        with locks.file_lock(root(settings) / ".state.lock"):
            state = _read_state(settings)
            if state is None:
                tenant, admin, controller = _choose_ports(3)
                state = {"cluster_id": new_cluster_id(), "host": HOST, "tenant_port": tenant,
                         "admin_port": admin, "controller_port": controller, "pid": None,
                         "version": KAFKA_VERSION}
                _write_state(settings, state)
    return state


def _endpoints_of(state: dict[str, Any]) -> Endpoints:
    host = state["host"]
    return Endpoints(f"{host}:{state['tenant_port']}", f"{host}:{state['admin_port']}",
                     f"{host}:{state['controller_port']}")


def planned_endpoints(settings: Settings) -> Endpoints:
    """Where the embedded broker listens once started (its ports chosen now if never before);
    nothing is started: a provision records these before the broker is up."""
    return _endpoints_of(_ensure_state(settings))


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
        ("listener.security.protocol.map", "INTERNAL:SSL,CONTROLLER:SSL,TENANT:SSL"),
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
        ("super.users", f"User:{ADMIN_PRINCIPAL}"),
        # The broker's own identity wherever it is a client (to its controller listener) and on
        # the admin listeners: signed by the admin CA, the only CA those listeners trust.
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", str(base / "tls" / "internal.pem")),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", str(base / "tls" / "admin-ca.pem")),
        ("ssl.enabled.protocols", "TLSv1.3,TLSv1.2"),
        ("ssl.endpoint.identification.algorithm", "https"),
        *[(f"listener.name.{name}.ssl.{key}", value) for name in ("internal", "controller") for key, value in (
            ("client.auth", "required"), ("keystore.type", "PEM"),
            ("keystore.location", str(base / "tls" / "internal.pem")), ("truststore.type", "PEM"),
            ("truststore.location", str(base / "tls" / "admin-ca.pem")))],
        ("listener.name.tenant.ssl.client.auth", "required"),
        ("listener.name.tenant.ssl.keystore.type", "PEM"),
        ("listener.name.tenant.ssl.keystore.location", str(base / "tls" / "broker.pem")),
        ("listener.name.tenant.ssl.truststore.type", "PEM"),
        ("listener.name.tenant.ssl.truststore.location", str(base / "tls" / "ca.pem")),
        ("listener.name.tenant.ssl.enabled.protocols", "TLSv1.3,TLSv1.2"),
        ("ssl.principal.mapping.rules", "RULE:^CN=([^,]+).*$/$1/,DEFAULT"),
    ]
    lines = [f"# Generated by Berth ({KAFKA_VERSION}); rewritten on every start.",
             "# Every listener is mutual TLS: TENANT trusts the add-on CA, INTERNAL and CONTROLLER",
             f"# only the admin CA, whose one certificate name (User:{ADMIN_PRINCIPAL}) is the super user."]
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


def _signed_by(path: Path, authority: kafka_ca.CertificateAuthority) -> bool:
    try:
        return authority.cert_pem in path.read_text()
    except OSError:
        return False


def _write_tls(settings: Settings, runs_as: ServiceAccount) -> None:
    """The broker's keys and trust stores in `tls/`, owned by the account it runs as (0700/0600):
    the tenant listener's certificate (add-on CA) and its internal one (admin CA)."""
    tls = root(settings) / "tls"
    authority = kafka_ca.for_settings(settings)
    admin = _admin_authority(settings)
    tls.mkdir(parents=True, exist_ok=True)
    runs_as.own(tls, 0o700)
    for name, text in (("ca.pem", authority.cert_pem), ("admin-ca.pem", admin.cert_pem)):
        kafka_ca.write_private(tls / name, text)
    for name, signer, issue in (
            ("broker.pem", authority, lambda: kafka_ca.issue_server(authority, [HOST, "localhost"])),
            ("internal.pem", admin, lambda: kafka_ca.issue_peer(admin, ADMIN_PRINCIPAL, [HOST, "localhost"]))):
        if not _signed_by(tls / name, signer):
            issued = issue()
            kafka_ca.write_private(tls / name, issued.key_pem + issued.chain_pem)
    for path in tls.iterdir():
        runs_as.own(path, 0o600)


# -- Berth's admin identity ----------------------------------------------------------------------

def _admin_authority(settings: Settings) -> kafka_ca.CertificateAuthority:
    directory = admin_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return kafka_ca.load_or_create(directory, "Berth Kafka admin CA")


def admin_credentials(settings: Settings) -> tuple[Path, Path, Path]:
    """(CA certificate, client certificate, client key) Berth's admin clients present to the
    embedded broker's INTERNAL and CONTROLLER listeners; made on first use (files mode 0600)."""
    directory = admin_dir(settings)
    ca_pem, cert, key = directory / "ca.pem", directory / "client.pem", directory / "client.key"
    authority = _admin_authority(settings)
    if not (_signed_by(cert, authority) and key.exists()):
        with locks.file_lock(directory / ".client.lock"):
            if not (_signed_by(cert, authority) and key.exists()):
                issued = kafka_ca.issue_client(authority, ADMIN_PRINCIPAL)
                kafka_ca.write_private(key, issued.key_pem)
                kafka_ca.write_private(cert, issued.chain_pem)
    return ca_pem, cert, key


def admin_client_config(settings: Settings, address: str | None = None) -> dict[str, Any]:
    """confluent-kafka settings for an admin client of the embedded broker (its INTERNAL
    listener unless `address` names another of its admin listeners)."""
    if address is None:
        found = endpoints(settings)
        if found is None:
            raise KafkaError("the embedded Kafka broker was never set up")
        address = found.admin_bootstrap
    ca_pem, cert, key = admin_credentials(settings)
    return {"bootstrap.servers": address, "security.protocol": "ssl", "ssl.ca.location": str(ca_pem),
            "ssl.certificate.location": str(cert), "ssl.key.location": str(key),
            "ssl.endpoint.identification.algorithm": "https"}


def admin_ssl_context(settings: Settings) -> ssl.SSLContext:
    """A TLS client context with Berth's admin certificate, for raw requests to the broker."""
    ca_pem, cert, key = admin_credentials(settings)
    context = ssl.create_default_context(cafile=str(ca_pem))
    context.load_cert_chain(str(cert), str(key))
    return context


def _write_config(settings: Settings, state: dict[str, Any], runs_as: ServiceAccount) -> Path:
    base = root(settings)
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)  # the account reads its configuration here; secrets live below, closed
    if data.stat().st_uid != runs_as.uid:  # a data dir from before Berth ran Kafka as its own account
        runs_as.own_tree(data)
    runs_as.own(data, 0o700)
    _write_tls(settings, runs_as)
    (base / "log4j2.properties").write_text(LOG4J2)
    properties = base / "server.properties"
    properties.write_text(render_properties(settings, state))
    runs_as.let_through(base)  # Berth's data dir is 0700: the account may pass, not look
    return properties


def _readable_by_others(libs: Path) -> bool:
    if not libs.stat().st_mode & stat.S_IROTH or not libs.stat().st_mode & stat.S_IXOTH:
        return False
    return all(jar.stat().st_mode & stat.S_IROTH for jar in libs.glob("*.jar"))


def _runnable_libs(settings: Settings, runs_as: ServiceAccount) -> Path:
    """The jars where the account can read them: the cache itself, or (a cache only root can
    read) hard links to its jars under the data dir, copies across file systems."""
    libs = libs_dir()
    if not jars_present(libs):
        raise KafkaError(f"the Kafka {KAFKA_VERSION} jars are not in {libs}: run scripts/fetch-kafka.sh")
    if not runs_as.switches or _readable_by_others(libs):
        return libs
    staged = root(settings) / "libs" / KAFKA_VERSION
    if (staged / ".complete").exists():
        return staged
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for jar in libs.glob("*.jar"):
        try:
            os.link(jar, staged / jar.name)
        except OSError:
            shutil.copyfile(jar, staged / jar.name)
        os.chmod(staged / jar.name, 0o644)
    for directory in (staged, staged.parent):
        os.chmod(directory, 0o755)
    (staged / ".complete").touch()
    return staged


def _java_argv(main: str, *args: str, settings: Settings, libs: Path, heap: bool = True) -> list[str]:
    options = list(JVM_OPTIONS) if heap else ["-Xmx256m", "-Djava.awt.headless=true"]
    return [java_binary(), *options, "-XX:-UsePerfData",  # no hsperfdata files in /tmp
            f"-Dlog4j2.configurationFile={root(settings) / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={root(settings)}",
            "-cp", f"{libs}/*", main, *args]


def _child_environment() -> dict[str, str]:
    """No BERTH_* settings (secrets among them) in the JVM's environment."""
    return processes.without_berth_settings(os.environ)


def _format_storage(settings: Settings, state: dict[str, Any], properties: Path, runs_as: ServiceAccount) -> None:
    if (root(settings) / "data" / "meta.properties").exists():
        return
    argv = _java_argv("kafka.tools.StorageTool", "format", "-t", state["cluster_id"], "-c", str(properties),
                      "--standalone", "--ignore-formatted", settings=settings,
                      libs=_runnable_libs(settings, runs_as), heap=False)
    result = processes.run(argv, runs_as, cwd=root(settings), env=_child_environment(), timeout=120)
    if result.returncode != 0:
        raise KafkaError(f"formatting Kafka's storage failed: {(result.stderr or result.stdout).strip()[-500:]}")


# -- the process ---------------------------------------------------------------------------------

def _is_ours(settings: Settings, pid: int | None) -> bool:
    """`pid` is alive and is the broker of this data dir (not a reused pid, not a zombie)."""
    if not pid:
        return False
    child = _children.running(pid)  # our own child: its exit status says it all
    if child is not None:
        return child
    return processes.runs_with(pid, str(root(settings) / "server.properties"), whole_argument=True)


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    return ports.listening(host, int(port))


def _answers(settings: Settings, address: str, timeout: float = 5.0) -> bool:
    """The admin listener serves metadata with a broker in it."""
    from confluent_kafka.admin import AdminClient

    if not _listening(address):
        return False
    client = AdminClient({**admin_client_config(settings, address), "client.id": "berth-probe",
                          "socket.connection.setup.timeout.ms": 2000, "log_level": 0})
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


def _start(settings: Settings, state: dict[str, Any], properties: Path, runs_as: ServiceAccount) -> int:
    for key in ("tenant_port", "admin_port", "controller_port"):
        if not ports.can_bind(HOST, state[key]):
            raise KafkaError(f"port {state[key]} on {HOST} (Kafka's {key.replace('_', ' ')}) is held by "
                             "another process")
    argv = _java_argv("kafka.Kafka", str(properties), settings=settings, libs=_runnable_libs(settings, runs_as))
    with open(root(settings) / "kafka.log", "ab") as output:
        process = processes.spawn(argv, runs_as, cwd=root(settings), env=_child_environment(), stdout=output,
                                  stderr=subprocess.STDOUT)
    _children.add(process)
    state["pid"] = process.pid
    _write_state(settings, state)
    log.info("started Kafka %s (pid %d, as %s) for %s", KAFKA_VERSION, process.pid, runs_as.name, root(settings))
    return process.pid


def _wait_ready(settings: Settings, state: dict[str, Any], timeout: float) -> None:
    admin = f"{state['host']}:{state['admin_port']}"

    def exited() -> None:
        if not _is_ours(settings, state.get("pid")):
            code = _children.exit_status(state.get("pid") or 0)
            raise KafkaError(f"Kafka exited while starting (exit status {code}); the end of its log:\n"
                             f"{_log_tail(settings)}")

    exited()
    if not readiness.wait_until(lambda: _answers(settings, admin, timeout=2.0), timeout, interval=0.2,
                                failed=exited):
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
        runs_as = account()
        properties = _write_config(settings, state, runs_as)
        _format_storage(settings, state, properties, runs_as)
        _start(settings, state, properties, runs_as)
        try:
            _wait_ready(settings, state, timeout)
        except KafkaError:
            _terminate(settings, state)
            raise
        return found


def running(settings: Settings) -> bool:
    state = _read_state(settings)
    return bool(state) and _is_ours(settings, state.get("pid"))  # type: ignore[union-attr]


def ready(settings: Settings) -> bool:
    """Running and accepting connections on its admin and tenant listeners (cheap: no start,
    no lock), i.e. a provision can be served now rather than after a JVM start."""
    state = _read_state(settings)
    if not state or not _is_ours(settings, state.get("pid")):
        return False
    found = _endpoints_of(state)
    return _listening(found.admin_bootstrap) and _listening(found.bootstrap)


def supervise(settings: Settings) -> Endpoints | None:
    """Start the embedded broker again if it died (nothing when an external cluster is configured)."""
    if settings.kafka_bootstrap:
        return None
    return ensure_embedded(settings)


def _terminate(settings: Settings, state: dict[str, Any], timeout: float = STOP_TIMEOUT) -> None:
    pid = state.get("pid")
    if pid and _is_ours(settings, pid):
        processes.stop(pid, lambda: _is_ours(settings, pid), timeout, kill_timeout=None)
    if pid:
        _children.forget(pid)  # reaps it: it is gone by now
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


__all__ = ["ACCOUNT", "ADMIN_PRINCIPAL", "Endpoints", "KAFKA_VERSION", "KafkaError", "LocalKafka", "account",
           "admin_client_config", "admin_credentials", "admin_dir", "admin_ssl_context", "endpoints", "ensure_embedded",
           "fetch_script", "jars_present", "libs_dir", "new_cluster_id", "planned_endpoints", "ready", "render_properties",
           "root", "running", "stop", "supervise"]
