"""Settings read from BERTH_* environment variables, with embedded defaults for one machine."""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, TypeVar

N = TypeVar("N", int, float)
# The data dir holds the key file, the SQLite database and the backends' files: Berth's alone.
DATA_DIR_MODE = 0o700


def _number(env: Mapping[str, str], name: str, default: N, kind: Callable[[str], N]) -> N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if not value > 0:
        raise ValueError(f"{name} must be a number of seconds above 0, got {env.get(name)!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, got {raw!r}")


_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _slug_store(env: Mapping[str, str]) -> str:
    """BERTH_SLUG_STORE: `local` or `s3://bucket[/prefix]`, refused at start-up when malformed."""
    raw = (env.get("BERTH_SLUG_STORE") or "local").strip()
    if raw == "local":
        return raw
    bucket = raw[len("s3://"):].split("/", 1)[0] if raw.startswith("s3://") else ""
    if not _S3_BUCKET.match(bucket) or "//" in raw[len("s3://"):]:
        raise ValueError(f"BERTH_SLUG_STORE must be `local` or s3://bucket[/prefix] (a bucket name of 3-63 "
                         f"lower-case letters, digits, dots and dashes), got {raw!r}")
    return raw.rstrip("/")


def _s3_endpoint(env: Mapping[str, str]) -> str:
    """BERTH_S3_ENDPOINT: an http(s) URL of an S3-compatible server; empty means AWS itself."""
    raw = (env.get("BERTH_S3_ENDPOINT") or "").strip().rstrip("/")
    if raw and not re.match(r"^https?://[^/?#@\s]+(/[^?#\s]*)?$", raw):
        raise ValueError(f"BERTH_S3_ENDPOINT must be an http:// or https:// URL (e.g. http://127.0.0.1:7070), "
                         f"got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 5000
    # The second listener: the whole API and git over HTTPS, with a certificate from the
    # installation CA (berth/tls_listener.py).
    tls_port: int = 5443
    tls_names: tuple[str, ...] = ()  # more DNS names / IP addresses its certificate must carry
    # Newest first; empty means "use the key file in the data dir".
    secret_keys: tuple[str, ...] = ()
    rate_limit_per_hour: int = 4500
    public_url: str = ""
    apps_domain: str = "localhost"
    router_port: int = 8080
    # One-off dynos: the rendezvous listener `heroku run` attaches to (TLS, the installation CA's).
    rendezvous_port: int = 5001
    router_tls_port: int = 8443
    region: str = "local"
    max_body_bytes: int = 1024 * 1024
    # Broker: how long a request waits for a quick provider, provider call timeouts, retries.
    provision_wait_seconds: float = 3.0
    provider_timeout_seconds: float = 30.0
    async_provision_timeout_seconds: int = 12 * 3600
    retry_base_seconds: float = 1.0
    worker_threads: int = 8
    # Builds (the builder process): concurrent builds (one per app at a time) and each one's time limit.
    builder_threads: int = 2
    build_timeout_seconds: float = 900.0
    # Release phase (run by the builder): the release command's time limit (Heroku: 1 h).
    release_phase_timeout_seconds: float = 3600.0
    # A formation dyno's second and later quick crashes wait this long, doubled each time (≤ 20 min).
    crash_cool_off_seconds: float = 20.0
    postdeploy_timeout_seconds: float = 3600.0  # app.json's scripts.postdeploy
    # Dynos: how long a web dyno has to bind $PORT before R10 (Boot timeout) kills it (Heroku: 60 s).
    dyno_boot_timeout_seconds: float = 60.0
    # Web tier: gunicorn processes × threads. Threads, because add-on requests spend most of
    # their time waiting for the worker; a sync worker would queue every other client behind one.
    web_workers: int = 2
    web_threads: int = 8
    # The first-party add-ons (postgresql, redis, kafka) in the catalogue and served at /providers.
    builtin_addons: bool = True
    # First-party add-on backends. Empty: Berth starts and owns local ones under data_dir/backends.
    postgres_servers: tuple[str, ...] = ()  # admin URLs (postgresql://admin:pw@host:port/postgres)
    redis_host: str = "127.0.0.1"           # where Redis add-on instances listen and apps reach them
    redis_servers: tuple[str, ...] = ()     # admin URLs (redis://admin:pw@host:port), one add-on each
    kafka_bootstrap: str = ""               # the brokers' mTLS listener apps use (host:port,...)
    kafka_admin_bootstrap: str = ""         # a listener Berth administers the cluster through
    kafka_ca_dir: str = ""                  # holds ca.pem and ca.key that sign tenants' client certs
    # Outbound calls (log drains, partner APIs) to loopback, private and link-local addresses:
    # refused unless allowed (tests, local partners). Berth's own /providers routes always work.
    allow_private_targets: bool = False
    # Berth's mTLS identity on an external cluster's admin listener (PEM paths; see kafka/external.py).
    kafka_admin_cert: str = ""
    kafka_admin_key: str = ""
    kafka_admin_ca: str = ""                # what signs the brokers' certificates; the system's CAs if unset
    kafka_admin_insecure: bool = False      # allow an external admin listener without credentials
    # Source blobs (POST /sources) and the source_blob.url a build or app setup fetches: the upload
    # limit, the unpacked limits, and the hosts other than Berth a source may come from (none).
    source_max_bytes: int = 512 * 1024 * 1024
    source_unpacked_max_bytes: int = 2 * 1024 * 1024 * 1024
    source_max_files: int = 100_000
    source_hosts: tuple[str, ...] = ()
    source_fetch_timeout_seconds: float = 300.0
    # git pushes: the most a push may send (its pack, as git receives it), in bytes.
    git_max_push_bytes: int = 512 * 1024 * 1024
    # Slugs: the largest compressed slug a build may pack or a client upload (Heroku: 1 GB).
    slug_max_bytes: int = 1024 * 1024 * 1024
    # Where slugs and uploaded sources live: `local` (files under data_dir) or `s3://bucket[/prefix]`
    # on the S3-compatible server at s3_endpoint (AWS's regional endpoint when empty).
    slug_store: str = "local"
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    # Open Service Broker: plans (`service:plan`) a platform may provision, update and deprovision
    # without `accepts_incomplete` (the request waits for the worker up to osb_sync_wait_seconds);
    # every other plan is asynchronous only (422 AsyncRequired without the flag).
    osb_sync_plans: tuple[str, ...] = ("postgresql:essential-0",)
    osb_sync_wait_seconds: float = 30.0
    osb_retry_after_seconds: int = 1  # `Retry-After` on last_operation while in progress
    # Several control-plane nodes over one PostgreSQL database. A node name makes this node one of
    # several: it then refuses to start without the shared secrets (berth/nodes.py).
    node_name: str = ""
    runner_shards: int = 16           # apps are split into this many shards, each reconciled by one runner
    runner_lease_seconds: float = 10.0  # a dead runner's shards are taken over within about this long
    # A running job's lease, renewed while its worker lives (berth/jobs/leases.py): a dead worker's
    # job is due again, or failed if it must not run twice, within about this long.
    job_lease_seconds: float = 30.0
    # The installation CA from configuration (PEM text, or the path of a PEM file), so that every
    # node serves the same one; empty: made on first use under data_dir/ca.
    ca_cert: str = ""
    ca_key: str = ""
    # Where dynos run: `local` (sandboxes on this host) or `swarm` (a Docker Swarm reached at
    # docker_host, app images pushed to registry `host:port`).
    runner: str = "local"
    docker_host: str = ""
    registry: str = ""
    # Each Swarm node's own Docker engine, by the node's hostname (BERTH_SWARM_NODE_ENGINES): R14/R15
    # from its containers' stats and OOM kills, attached one-offs on the swarm. Platform credentials:
    # never logged, never in a dyno's environment. tcp:// engines need mutual TLS from
    # swarm_engine_tls_dir (ca.pem, cert.pem, key.pem, as `docker --tlsverify` wants them).
    swarm_node_engines: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    swarm_engine_tls_dir: str = ""

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def git_base_url(self) -> str:
        """Where git remotes point: the TLS listener (git and the Heroku CLI want https)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"https://{f'[{host}]' if ':' in host else host}:{self.tls_port}"

    @property
    def rendezvous_base(self) -> str:
        """`rendezvous://host:port`, the host one the TLS certificate names (as git_base_url's)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"rendezvous://{f'[{host}]' if ':' in host else host}:{self.rendezvous_port}"

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("BERTH_DATA_DIR") or "./var").resolve()
    database_url = env.get("BERTH_DATABASE_URL") or f"sqlite:///{data_dir / 'berth.sqlite3'}"
    keys = tuple(k.strip() for k in (env.get("BERTH_SECRET_KEYS") or "").split(",") if k.strip())
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        host=env.get("BERTH_HOST") or "127.0.0.1",
        port=_int(env, "BERTH_PORT", 5000),
        tls_port=_int(env, "BERTH_TLS_PORT", 5443),
        tls_names=tuple(n.strip() for n in (env.get("BERTH_TLS_NAMES") or "").split(",") if n.strip()),
        secret_keys=keys,
        rate_limit_per_hour=_int(env, "BERTH_RATE_LIMIT_PER_HOUR", 4500),
        public_url=(env.get("BERTH_PUBLIC_URL") or "").rstrip("/"),
        apps_domain=env.get("BERTH_APPS_DOMAIN") or "localhost",
        router_port=_int(env, "BERTH_ROUTER_PORT", 8080),
        rendezvous_port=_int(env, "BERTH_RENDEZVOUS_PORT", 5001),
        router_tls_port=_int(env, "BERTH_ROUTER_TLS_PORT", 8443),
        region=env.get("BERTH_REGION") or "local",
        max_body_bytes=_int(env, "BERTH_MAX_BODY_BYTES", 1024 * 1024),
        provision_wait_seconds=_float(env, "BERTH_PROVISION_WAIT_SECONDS", 3.0),
        provider_timeout_seconds=_float(env, "BERTH_PROVIDER_TIMEOUT_SECONDS", 30.0),
        async_provision_timeout_seconds=_int(env, "BERTH_ASYNC_PROVISION_TIMEOUT_SECONDS", 12 * 3600),
        retry_base_seconds=_float(env, "BERTH_RETRY_BASE_SECONDS", 1.0),
        worker_threads=_int(env, "BERTH_WORKER_THREADS", 8),
        builder_threads=_int(env, "BERTH_BUILDER_THREADS", 2),
        build_timeout_seconds=_float(env, "BERTH_BUILD_TIMEOUT_SECONDS", 900.0),
        release_phase_timeout_seconds=_float(env, "BERTH_RELEASE_PHASE_TIMEOUT_SECONDS", 3600.0),
        crash_cool_off_seconds=_float(env, "BERTH_CRASH_COOL_OFF_SECONDS", 20.0),
        postdeploy_timeout_seconds=_float(env, "BERTH_POSTDEPLOY_TIMEOUT_SECONDS", 3600.0),
        dyno_boot_timeout_seconds=_positive_float(env, "BERTH_DYNO_BOOT_TIMEOUT_SECONDS", 60.0),
        web_workers=_int(env, "BERTH_WEB_WORKERS", 2),
        web_threads=_int(env, "BERTH_WEB_THREADS", 8),
        builtin_addons=(env.get("BERTH_BUILTIN_ADDONS") or "1").strip().lower() not in ("0", "false", "no", "off"),
        postgres_servers=tuple(u.strip() for u in (env.get("BERTH_POSTGRES_SERVERS") or "").split(",")
                               if u.strip()),
        redis_host=env.get("BERTH_REDIS_HOST") or "127.0.0.1",
        redis_servers=tuple(u.strip() for u in (env.get("BERTH_REDIS_SERVERS") or "").split(",") if u.strip()),
        kafka_bootstrap=env.get("BERTH_KAFKA_BOOTSTRAP") or "",
        kafka_admin_bootstrap=env.get("BERTH_KAFKA_ADMIN_BOOTSTRAP") or "",
        kafka_ca_dir=env.get("BERTH_KAFKA_CA_DIR") or "",
        allow_private_targets=_flag(env, "BERTH_ALLOW_PRIVATE_TARGETS", False),
        kafka_admin_cert=env.get("BERTH_KAFKA_ADMIN_CERT") or "",
        kafka_admin_key=env.get("BERTH_KAFKA_ADMIN_KEY") or "",
        kafka_admin_ca=env.get("BERTH_KAFKA_ADMIN_CA") or "",
        kafka_admin_insecure=_flag(env, "BERTH_KAFKA_ADMIN_INSECURE", False),
        source_max_bytes=_int(env, "BERTH_SOURCE_MAX_BYTES", 512 * 1024 * 1024),
        source_unpacked_max_bytes=_int(env, "BERTH_SOURCE_UNPACKED_MAX_BYTES", 2 * 1024 * 1024 * 1024),
        source_max_files=_int(env, "BERTH_SOURCE_MAX_FILES", 100_000),
        source_hosts=tuple(h.strip().lower() for h in (env.get("BERTH_SOURCE_HOSTS") or "").split(",")
                           if h.strip()),
        source_fetch_timeout_seconds=_float(env, "BERTH_SOURCE_FETCH_TIMEOUT_SECONDS", 300.0),
        git_max_push_bytes=_int(env, "BERTH_GIT_MAX_PUSH_BYTES", 512 * 1024 * 1024),
        slug_max_bytes=_int(env, "BERTH_SLUG_MAX_BYTES", 1024 * 1024 * 1024),
        slug_store=_slug_store(env),
        s3_endpoint=_s3_endpoint(env),
        s3_region=env.get("BERTH_S3_REGION") or "us-east-1",
        s3_access_key_id=env.get("BERTH_S3_ACCESS_KEY_ID") or "",
        s3_secret_access_key=env.get("BERTH_S3_SECRET_ACCESS_KEY") or "",
        osb_sync_plans=tuple(p.strip() for p in (env.get("BERTH_OSB_SYNC_PLANS", "postgresql:essential-0")).split(",")
                             if p.strip()),
        osb_sync_wait_seconds=_positive_float(env, "BERTH_OSB_SYNC_WAIT_SECONDS", 30.0),
        osb_retry_after_seconds=max(1, _int(env, "BERTH_OSB_RETRY_AFTER_SECONDS", 1)),
        node_name=(env.get("BERTH_NODE_NAME") or "").strip(),
        runner_shards=_int(env, "BERTH_RUNNER_SHARDS", 16),
        runner_lease_seconds=_positive_float(env, "BERTH_RUNNER_LEASE_SECONDS", 10.0),
        job_lease_seconds=_positive_float(env, "BERTH_JOB_LEASE_SECONDS", 30.0),
        ca_cert=env.get("BERTH_CA_CERT") or "",
        ca_key=env.get("BERTH_CA_KEY") or "",
        **_runner_settings(env),
    )


RUNNERS = ("local", "swarm")


def _runner_settings(env: Mapping[str, str]) -> dict[str, object]:
    """BERTH_RUNNER and, for `swarm`, the Docker endpoint and the registry it needs."""
    runner = (env.get("BERTH_RUNNER") or "local").strip().lower()
    if runner not in RUNNERS:
        raise ValueError(f"BERTH_RUNNER must be one of {', '.join(RUNNERS)}, got {env.get('BERTH_RUNNER')!r}")
    docker_host = (env.get("BERTH_DOCKER_HOST") or "").strip()
    registry = (env.get("BERTH_REGISTRY") or "").strip()
    if docker_host and not docker_host.startswith(("unix://", "tcp://")):
        raise ValueError(f"BERTH_DOCKER_HOST must be unix://PATH or tcp://HOST:PORT, got {docker_host!r}")
    if registry and not re.match(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$", registry):
        raise ValueError(f"BERTH_REGISTRY must be host:port, got {registry!r}")
    if runner == "swarm" and not (docker_host and registry):
        raise ValueError("BERTH_RUNNER=swarm needs BERTH_DOCKER_HOST (a swarm manager's unix:// or tcp:// "
                         "endpoint) and BERTH_REGISTRY (host:port every node pulls app images from)")
    return {"runner": runner, "docker_host": docker_host, "registry": registry, **_node_engine_settings(env)}


NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")


def _node_engine_settings(env: Mapping[str, str]) -> dict[str, object]:
    """BERTH_SWARM_NODE_ENGINES=`node=endpoint,…` and BERTH_SWARM_ENGINE_TLS_DIR. Errors name the
    node, never the endpoint (a credential)."""
    raw = (env.get("BERTH_SWARM_NODE_ENGINES") or "").strip()
    tls_dir = (env.get("BERTH_SWARM_ENGINE_TLS_DIR") or "").strip()
    engines: dict[str, str] = {}
    for number, entry in enumerate(filter(None, (part.strip() for part in raw.split(","))), start=1):
        node, equals, endpoint = (part.strip() for part in entry.partition("="))
        if not equals or not NODE_NAME_RE.match(node):
            raise ValueError(f"BERTH_SWARM_NODE_ENGINES entry {number} must be NODE=ENDPOINT, NODE a Swarm "
                             "node's hostname (`docker node ls` shows them)")
        if node in engines:
            raise ValueError(f"BERTH_SWARM_NODE_ENGINES names node {node} twice: give each node one engine")
        if endpoint.startswith("unix:///"):
            pass
        elif endpoint.startswith("tcp://"):
            if not tls_dir:
                raise ValueError(f"BERTH_SWARM_NODE_ENGINES gives node {node} a tcp:// engine: set "
                                 "BERTH_SWARM_ENGINE_TLS_DIR to a directory with ca.pem, cert.pem and key.pem "
                                 "(an engine without TLS gives root on its machine to anyone who reaches it)")
        else:
            raise ValueError(f"BERTH_SWARM_NODE_ENGINES: node {node}'s engine must be unix:///PATH or "
                             "tcp://HOST:PORT")
        engines[node] = endpoint
    if tls_dir:
        missing = [name for name in ("ca.pem", "cert.pem", "key.pem") if not (Path(tls_dir) / name).is_file()]
        if missing:
            raise ValueError(f"BERTH_SWARM_ENGINE_TLS_DIR has no {', '.join(missing)}")
    return {"swarm_node_engines": tuple(sorted(engines.items())), "swarm_engine_tls_dir": tls_dir}


def prepare_data_dir(path: Path) -> None:
    """Creates the data dir private (0700), or makes an existing one private when other users
    may list or change it (left so by an older Berth, or a lax umask). Search permission alone
    is left: the embedded backends grant it to their service accounts, which must reach their
    own directories inside, and it lets no one list the dir or read the 0600 files in it."""
    path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o066:
        try:
            path.chmod(DATA_DIR_MODE)
        except PermissionError as error:
            raise PermissionError(f"The data dir {path} is open to other users and Berth cannot make "
                                  f"it private ({error.strerror}): run Berth as its owner, or "
                                  f"chmod 700 it.") from None
