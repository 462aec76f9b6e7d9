"""One dedicated `redis-server` per Redis add-on, on this host (`specs/backends.md` §7.1).

Each instance lives in `data_dir/backends/redis/<uuid>/`: `redis.conf` (mode 0600, generated
from the add-on's record and rewritten on every start and resize; the server reads it on stdin),
`redis.pid`, `redis.log`, its TLS certificate (`tls.py`) and, on persistent plans,
`appendonlydir/`. When Berth is root the server runs as the `berth-redis` system account, which
owns that directory (0700) and nothing else of Berth's; Berth treats the directory's contents
as the server's (`berth.supervise.files`). The server's memory is bounded by its plan's maxmemory plus its
clients' share (`plans.ClientLimits`). The server daemonizes itself (its own session,
reparented away from Berth), so it outlives the process that started it; `supervise` restarts
the ones that died.

Who may do what is set with ACL users in the generated config, not with `rename-command`:

- `default` is the tenant (the URL's `redis://:PASSWORD@` logs in as it): every command except
  CONFIG, ACL, SHUTDOWN, REPLICAOF/SLAVEOF, FAILOVER, MIGRATE, MODULE, DEBUG, SYNC/PSYNC and
  CLIENT NO-EVICT, so it cannot raise its own limits (memory, client buffers), change passwords,
  stop the server or open connections elsewhere.
- `berth` (its own random password, kept in the encrypted record) may do everything, and is how
  Berth resizes the running server with CONFIG SET.
- `berth-grant-<hex>`, one per grant (an OSB binding, `grants.py`): the tenant's rights under a
  user and password of its own, so unbinding deletes it alone.

ACLs rather than a secret renamed CONFIG because a renamed command still shows up to the tenant
(`COMMAND`, `INFO commandstats` once Berth has used it), whereas the admin user's password never
leaves Berth, and the same users allow rotating the tenant's password later (`ACL SETUSER`).

Every function takes the instance's `details` (the record's JSON): host, port, password,
admin_password, maxmemory, maxclients, appendonly, maxmemory_policy. Add-ons on operator-run
servers (`external.py`) have no instance here: `supervise` and `stop_all` skip them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from berth.addons import resources
from berth.addons.redis import tls
from berth.addons.redis.plans import client_limits
from berth.config import Settings
from berth.db import Database
from berth.supervise import files, locks, loop, ports, processes, readiness
from berth.supervise.accounts import AccountError, ServiceAccount, service_account

log = logging.getLogger(__name__)

SERVICE = "redis"
ACCOUNT = "berth-redis"  # the system account local redis-servers run as when Berth is root
ADMIN_USER = "berth"
# Outside Linux's ephemeral range (32768-60999), so a client's outgoing connection never holds
# a stopped instance's port when it restarts.
DEFAULT_PORTS = range(26379, 28379)
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# Commands the tenant's user may not run (see the module docstring). SYNC/PSYNC would make the
# tenant's connection a replica, and CLIENT NO-EVICT exempt it, from the clients' memory share.
TENANT_DENIED = ("config", "acl", "shutdown", "replicaof", "slaveof", "failover", "migrate",
                 "module", "debug", "sync", "psync", "client|no-evict")
GRANT_PREFIX = "berth-grant-"
UUID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}\Z")


class InstanceError(RuntimeError):
    """An instance could not be started, stopped or changed (no secret in the message)."""


class PortInUse(InstanceError):
    """Another process holds the instance's port."""


class TooMuchData(InstanceError):
    """A smaller maxmemory was asked for than the instance already uses."""


# -- places and names --------------------------------------------------------------------------

def root(settings: Settings) -> Path:
    return settings.data_dir / "backends" / "redis"


def instance_dir(settings: Settings, uuid: str) -> Path:
    if not UUID_RE.match(uuid):
        raise ValueError(f"not a valid add-on id: {uuid!r}")
    return root(settings) / uuid


def config_path(settings: Settings, uuid: str) -> Path:
    return instance_dir(settings, uuid) / "redis.conf"


def redis_server_binary() -> str:
    found = os.environ.get("BERTH_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).is_file():
        raise InstanceError("redis-server is not installed (apt-get install redis-server)")
    return found


def new_details(host: str, port: int, limits: dict[str, Any], policy: str,
                tls_port: int | None = None) -> dict[str, Any]:
    """A fresh record for an instance: where it listens (plain and TLS), generated passwords,
    its limits."""
    details = {"host": host, "port": port, "password": secrets.token_hex(32),
               "admin_password": secrets.token_hex(32), "maxmemory_policy": policy, **limits}
    if tls_port is not None:
        details["tls_port"] = tls_port
    return details


def url(details: dict[str, Any], secure: bool = False, grant: dict[str, str] | None = None) -> str:
    """The tenant's URL (or, with `grant`, that grant's user's): the plain port, or (`secure`)
    the TLS port as `rediss://`."""
    host = details["host"]
    host = f"[{host}]" if ":" in host else host
    login = f"{grant['user']}:{grant['password']}" if grant else f":{details['password']}"
    if secure:
        return f"rediss://{login}@{host}:{int(details['tls_port'])}"
    return f"redis://{login}@{host}:{details['port']}"


def tenant_rules(password: str) -> list[str]:
    """ACL SETUSER rules for a user with the tenant's rights (after `reset`, or in redis.conf)."""
    return ["on", f">{password}", "~*", "&*", "+@all", *(f"-{command}" for command in TENANT_DENIED)]


def admin_client_for(settings: Settings, details: dict[str, Any]) -> "redis.Redis[bytes]":
    """`admin_client` on the plain port, or the TLS one verified with the installation's CA."""
    return admin_client(details, ca=None if tls.plain_port_open(details) else _ca(settings))


def no_retries() -> Retry:
    # redis-py retries failed connections with backoff by default: Berth wants the answer now.
    return Retry(NoBackoff(), 0)


def admin_client(details: dict[str, Any], timeout: float = 5.0, ca: Path | None = None) -> "redis.Redis[bytes]":
    """Berth's connection to an instance: its plain port, or its TLS port (verified with `ca`,
    the installation CA's file) where it has no plain one."""
    common: dict[str, Any] = {"host": details["host"], "username": ADMIN_USER,
                              "password": details["admin_password"], "socket_timeout": timeout,
                              "socket_connect_timeout": timeout, "retry": no_retries()}
    if tls.plain_port_open(details):
        return redis.Redis(port=details["port"], **common)
    if ca is None:
        raise InstanceError("this instance listens on TLS only: give the CA to reach it")
    return redis.Redis(port=int(details["tls_port"]), ssl=True, ssl_ca_certs=str(ca), **common)


def usage(settings: Settings, details: dict[str, Any]) -> dict[str, int]:
    """What a running local instance uses now: `used_memory_bytes` and `connected_clients`."""
    client = admin_client(details, timeout=2.0, ca=None if tls.plain_port_open(details) else _ca(settings))
    try:
        memory, clients = client.info("memory"), client.info("clients")
    except redis.RedisError as exc:
        raise InstanceError(f"cannot read the instance's INFO: {exc}") from exc
    finally:
        client.close()
    return {"used_memory_bytes": int(memory["used_memory"]), "connected_clients": int(clients["connected_clients"])}


# -- locks -------------------------------------------------------------------------------------

def instance_lock(settings: Settings, uuid: str) -> contextlib.AbstractContextManager[None]:
    """Serialises start/stop/resize/remove of one instance across threads and processes."""
    instance_dir(settings, uuid)  # validates the id before it names a file
    return locks.file_lock(root(settings) / ".locks" / f"{uuid}.lock")


def port_lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """Held from choosing a port until the record that reserves it is committed."""
    return locks.file_lock(root(settings) / ".locks" / "ports.lock")


def choose_port(host: str, taken: set[int], candidates: range = DEFAULT_PORTS) -> int:
    """The lowest port in `candidates` that no record holds and nothing listens on now (bound
    with SO_REUSEADDR, as redis-server binds)."""
    for port in ports.free_ports(host, candidates, taken=taken):
        return port
    raise InstanceError(f"no free port for a Redis instance in {candidates.start}-{candidates.stop - 1}")


# -- processes ---------------------------------------------------------------------------------

def _quote(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise InstanceError("a path for redis.conf contains a newline")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ca(settings: Settings) -> Path:
    try:
        return tls.ca_file(settings)
    except tls.CertificateError as exc:
        raise InstanceError(f"cannot read the installation CA: {exc}") from exc


def _title_safe(path: str) -> str:
    if "{" in path or "}" in path:
        raise InstanceError("BERTH_DATA_DIR contains { or }, which Redis's process title cannot show")
    return path


def render_config(settings: Settings, uuid: str, details: dict[str, Any]) -> str:
    directory = instance_dir(settings, uuid)
    denied = " ".join(f"-{command}" for command in TENANT_DENIED)
    lines = [
        f"# Generated by Berth for Redis add-on {uuid}; rewritten on every start and resize.",
        f"bind {details['host']}",
        f"port {int(details['port']) if tls.plain_port_open(details) else 0}",
        *tls.config_lines(details),
        "protected-mode yes",
        "daemonize yes",
        "supervised no",
        # The server gets this text on stdin and starts in its directory, with paths relative
        # to it: its account may not be able to traverse the data dir's parents (a 0700 home, a
        # private tmp dir), so it could open no absolute path there.
        "pidfile redis.pid",
        "logfile redis.log",
        "dir .",
        # The config path in the process title lets Berth tell its instance from a reused pid.
        f"proc-title-template {_quote('{title} {listen-addr} ' + _title_safe(str(directory / 'redis.conf')))}",
        f"maxmemory {int(details['maxmemory'])}",
        f"maxmemory-policy {details['maxmemory_policy']}",
        f"maxclients {int(details['maxclients'])}",
        *(f"{name} {value}" for name, value in client_config(details).items()),
        'save ""',
        f"appendonly {'yes' if details['appendonly'] else 'no'}",
        "appendfsync everysec",
        "enable-debug-command no",
        "enable-module-command no",
        "enable-protected-configs no",
        f"user default on >{details['password']} ~* &* +@all {denied}",
        *(f"user {grant['user']} {' '.join(tenant_rules(grant['password']))}"
          for grant in (details.get("grants") or {}).values()),
        f"user {ADMIN_USER} on >{details['admin_password']} ~* &* +@all",
    ]
    return "\n".join(lines) + "\n"


def client_config(details: dict[str, Any]) -> dict[str, str]:
    """The client buffer limits that keep the instance within its plan (plans.ClientLimits)."""
    return client_limits(int(details["maxmemory"])).config()


def server_account() -> ServiceAccount:
    """Who every local redis-server runs as: `berth-redis` when Berth is root, else Berth."""
    try:
        return service_account(ACCOUNT)
    except AccountError as exc:
        raise InstanceError(f"cannot set up the {ACCOUNT} account redis-server runs as: {exc}") from exc


def _prepare_dir(settings: Settings, uuid: str, account: ServiceAccount) -> Path:
    """The instance's directory, 0700 and the server account's. A directory from before servers
    ran as that account (root's, holding only what Berth and its own servers wrote) is handed
    over whole; once the account owns it, Berth never walks it again, since the server could
    have planted symlinks there."""
    directory = instance_dir(settings, uuid)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    if directory.is_symlink() or not directory.is_dir():
        raise InstanceError(f"{directory} is not a directory")
    if directory.stat().st_uid != account.uid:
        account.own_tree(directory)
    account.own(directory, 0o700)
    return directory


def _write_config(settings: Settings, uuid: str, details: dict[str, Any]) -> str:
    """Write the instance's redis.conf (what it runs with, for restarts and for people) and
    return its text."""
    account = server_account()
    directory = _prepare_dir(settings, uuid, account)
    try:
        tls.ensure_certificate(settings, directory, details, account)
    except tls.CertificateError as exc:
        raise InstanceError(f"no TLS certificate for redis instance {uuid}: {exc}") from exc
    text = render_config(settings, uuid, details)
    files.write_owned(config_path(settings, uuid), text, account)
    return text


def pid(settings: Settings, uuid: str) -> int | None:
    """The running server's pid, or None. Checks the process title, not just the pidfile."""
    directory = instance_dir(settings, uuid)
    conf = directory / "redis.conf"
    if not conf.exists():
        # Never started (or removed, which stops it first): no need to scan /proc, which costs
        # milliseconds on every provision.
        return None
    try:
        recorded = int(files.read_regular(directory / "redis.pid", 0, 64).strip())
    except ValueError:
        recorded = None
    # The config path in the process title tells Berth's instance from a reused pid.
    if recorded is not None and processes.runs_with(recorded, str(conf)):
        return recorded
    # The pidfile is written only once the server listens, and may be lost: look for the title.
    return processes.find("redis-server", str(conf))


def is_running(settings: Settings, uuid: str) -> bool:
    return pid(settings, uuid) is not None


def _read_log(directory: Path, offset: int) -> str:
    return files.read_regular(directory / "redis.log", offset)


def _command(*words: str) -> bytes:
    encoded = [word.encode() for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded)


def _ping(details: dict[str, Any], ca: Path | None = None) -> bool:
    """Whether the server answers the tenant's AUTH and a PING. Raw RESP, both commands in one
    round trip: redis-py would spend four (AUTH, two CLIENT SETINFO, PING) on a new connection.
    With `ca` (the installation CA's file), over the TLS port: for instances with no plain one."""
    port = int(details["port"] if ca is None else details["tls_port"])
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((details["host"], port), timeout=0.5))
            if ca is not None:
                context = tls.client_context(ca)
                sock = stack.enter_context(context.wrap_socket(sock, server_hostname=details["host"]))
            sock.sendall(_command("AUTH", "default", str(details["password"])) + _command("PING"))
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return False
    # A server with every connection taken still answered: it is up. `-LOADING` is not yet.
    return answer.startswith(b"+OK\r\n+PONG\r\n") or b"max number of clients reached" in answer


def _wait_ready(settings: Settings, uuid: str, details: dict[str, Any], log_offset: int | None,
                timeout: float, launcher: "subprocess.Popen[str] | None" = None) -> None:
    """Poll PING until the server answers. `launcher` is the redis-server that daemonizes (its
    exit is watched alongside, not waited for first: the server initialises meanwhile)."""
    directory = instance_dir(settings, uuid)
    ca = None if tls.plain_port_open(details) else _ca(settings)
    attempts = 0

    def failed() -> None:
        nonlocal attempts
        attempts += 1
        if launcher is not None and launcher.poll() not in (None, 0):
            output = launcher.stdout.read() if launcher.stdout else ""
            raise InstanceError(f"redis-server for {uuid} refused to start:\n{_redact(_tail(output), details)}")
        # The log is read once in a while: a refused connect costs microseconds, a read more.
        if log_offset is not None and attempts % 10 == 1:
            new_log = _read_log(directory, log_offset)
            if "Address already in use" in new_log or "Failed listening on port" in new_log:
                raise PortInUse(f"port {details['port']} on {details['host']} is taken")
            started = re.search(r"(?m)^(\d+):M ", new_log)  # the daemon's own lines
            if started and not processes.alive(int(started.group(1))):
                raise InstanceError(f"redis-server for {uuid} exited at start:\n"
                                    f"{_redact(_tail(new_log), details)}")

    # A new server answers within ~20 ms: poll tightly at first, gently if it takes longer.
    if not readiness.wait_until(lambda: _ping(details, ca), timeout, interval=0.02, failed=failed,
                                quickly_for=0.2, quick_interval=0.001):
        raise InstanceError(f"redis-server for {uuid} did not answer PING within {timeout:g} s")


def _redact(text: str, details: dict[str, Any]) -> str:
    """redis-server echoes a bad config line, which may be a `user` line with a password."""
    for key in ("password", "admin_password"):
        if details.get(key):
            text = text.replace(str(details[key]), "[REDACTED]")
    return text


def _tail(text: str, lines: int = 8) -> str:
    return files.tail(text, lines)


def start(settings: Settings, uuid: str, details: dict[str, Any], timeout: float = START_TIMEOUT) -> bool:
    """Make the instance run with `details`. True if a server was started, False if it was
    running already (then only waits for PING). Raises PortInUse / InstanceError."""
    with instance_lock(settings, uuid):
        if is_running(settings, uuid):
            _wait_ready(settings, uuid, details, None, timeout)
            return False
        directory = instance_dir(settings, uuid)
        config = _write_config(settings, uuid, details)
        (directory / "redis.pid").unlink(missing_ok=True)
        try:
            offset = (directory / "redis.log").lstat().st_size
        except FileNotFoundError:
            offset = 0
        # daemonize yes: this process reads its config from stdin, forks the server (which calls
        # setsid) and exits. Its output (a bad config line, before the log file is open) goes to
        # a pipe the daemon lets go of. The child enters the directory (as Berth) before it
        # becomes the server's account.
        account = server_account()
        launcher = processes.spawn([redis_server_binary(), "-"], account, cwd=directory, env=os.environ,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        try:
            with contextlib.suppress(BrokenPipeError):  # it refused at once: its output says why
                launcher.stdin.write(config)  # type: ignore[union-attr]
                launcher.stdin.close()  # type: ignore[union-attr]
            _wait_ready(settings, uuid, details, offset, timeout, launcher)
            launcher.wait(timeout)  # exited before the daemon listened: reaps it at once
        except subprocess.TimeoutExpired as exc:
            raise InstanceError(f"redis-server for {uuid} did not daemonize within {timeout:g} s") from exc
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait()
            launcher.stdout.close()  # type: ignore[union-attr]
        log.info("started redis instance %s on %s:%s", uuid, details["host"], details["port"])
        return True


def stop(settings: Settings, uuid: str, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM (the server flushes its AOF and exits), SIGKILL after `timeout`. False if it
    was not running."""
    with instance_lock(settings, uuid):
        running = pid(settings, uuid)
        if running is None:
            return False
        try:
            processes.stop(running, lambda: processes.alive(running), timeout, kill_timeout=5.0)
        except processes.DoesNotStop as exc:
            raise InstanceError(f"redis-server for {uuid} (pid {running}) does not stop") from exc
        (instance_dir(settings, uuid) / "redis.pid").unlink(missing_ok=True)
        return True


def remove(settings: Settings, uuid: str) -> None:
    """Stop the instance and delete its directory (data, config, log). Idempotent."""
    with instance_lock(settings, uuid):
        stop(settings, uuid)
        shutil.rmtree(instance_dir(settings, uuid), ignore_errors=True)
    (root(settings) / ".locks" / f"{uuid}.lock").unlink(missing_ok=True)


def config_set_args(details: dict[str, Any]) -> list[str]:
    """CONFIG SET's arguments for the limits and policy in `details`: one atomic call, so the
    client limits always change with the maxmemory they are derived from."""
    settings = {"maxmemory": str(int(details["maxmemory"])), "maxclients": str(int(details["maxclients"])),
                "maxmemory-policy": str(details["maxmemory_policy"]),
                "appendonly": "yes" if details["appendonly"] else "no", **client_config(details)}
    return [word for pair in settings.items() for word in pair]


def resize(settings: Settings, uuid: str, details: dict[str, Any], timeout: float = START_TIMEOUT) -> None:
    """Apply `details`' limits and policy: CONFIG SET on the running server (data stays), and
    the config file for later restarts. A stopped instance is started with them.

    Raises TooMuchData when the server already uses more than the new maxmemory, InstanceError
    when it cannot be reached (e.g. all its `maxclients` connections are taken)."""
    with instance_lock(settings, uuid):
        if not is_running(settings, uuid):
            start(settings, uuid, details, timeout)
            return
        client = admin_client(details, ca=None if tls.plain_port_open(details) else _ca(settings))
        try:
            used = int(client.info("memory")["used_memory"])
            if used > int(details["maxmemory"]):
                raise TooMuchData(f"the instance holds {used / 1048576:.1f} MB, more than the "
                                  f"{int(details['maxmemory']) / 1048576:g} MB asked for")
            client.execute_command("CONFIG", "SET", *config_set_args(details))
        except redis.RedisError as exc:
            raise InstanceError(f"cannot reconfigure redis instance {uuid}: {type(exc).__name__}: "
                                f"{exc}") from exc
        finally:
            client.close()
        _write_config(settings, uuid, details)


def change_users(settings: Settings, uuid: str, details: dict[str, Any], change: Callable[["redis.Redis[bytes]"], None],
                 timeout: float = START_TIMEOUT) -> None:
    """Apply `change` (ACL commands) to the running server and write `details` (its users) to
    the config file for later restarts; a stopped instance is started with them instead."""
    with instance_lock(settings, uuid):
        if not is_running(settings, uuid):
            start(settings, uuid, details, timeout)
            return
        client = admin_client_for(settings, details)
        try:
            change(client)
        except redis.RedisError as exc:
            raise InstanceError(f"cannot change the users of redis instance {uuid}: {type(exc).__name__}") from exc
        finally:
            client.close()
        _write_config(settings, uuid, details)


# -- all instances -----------------------------------------------------------------------------

def supervise(settings: Settings, database: Database) -> list[str]:
    """Restart every active instance whose server is gone (call it every few seconds).
    Returns the ids restarted; failures are logged and retried on the next call. Add-ons on
    operator-run servers (BERTH_REDIS_SERVERS) are not Berth's to start, and are skipped."""
    with database.session(write=False) as session:
        ids = [resource.id for resource in _local(session) if resource.state == resources.ACTIVE]

    def start_if_live(uuid: str) -> bool:
        with instance_lock(settings, uuid):
            # Re-read under the lock: a deprovision may have begun since.
            with database.session(write=False) as session:
                resource = resources.find(session, SERVICE, uuid)
                if resource is None or resource.state != resources.ACTIVE:
                    return False
                details = resources.details(resource)
            return start(settings, uuid, details)

    return loop.restart_stopped(ids, running=lambda uuid: is_running(settings, uuid), start=start_if_live,
                                errors=(InstanceError, OSError), what="redis instance", log=log)


def _local(session: Any) -> list[Any]:
    """Live resources that are redis-servers of Berth's own (not on an external server)."""
    return [resource for resource in resources.live(session, SERVICE)
            if not resources.details(resource).get("external")]


def stop_all(settings: Settings, database: Database) -> list[str]:
    """Stop every instance Berth knows of (shutting the backends down). Returns those stopped."""
    with database.session(write=False) as session:
        ids = [resource.id for resource in _local(session)]
    return loop.stop_each(ids, stop=lambda uuid: stop(settings, uuid), errors=(InstanceError,),
                          what="redis instance", log=log)


__all__ = ["ADMIN_USER", "DEFAULT_PORTS", "InstanceError", "PortInUse", "SERVICE", "TooMuchData",
           "admin_client", "choose_port", "client_config", "config_path", "config_set_args", "instance_dir",
           "instance_lock", "is_running",
           "new_details", "no_retries", "pid", "port_lock", "remove", "render_config", "resize", "root",
           "start", "stop", "stop_all", "supervise", "url"]
