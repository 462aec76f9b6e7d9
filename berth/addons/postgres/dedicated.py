"""One PostgreSQL cluster per dedicated Postgres add-on (plan `standard-0`), on this host.

Each cluster lives in `data_dir/backends/postgres-dedicated/<uuid>/`: `cluster/` (the data
directory), `cluster.password` (its superuser's password, 0600, written by `LocalPostgres`) and
`closed` (a marker: PUBLIC has lost CONNECT on `postgres` and `template1`, as in `embedded.py`).
Its port is chosen once from `PORTS` and kept in the add-on's record (committed before initdb,
under `port_lock`), because the tenant's DATABASE_URL names it. The range lies outside Linux's
ephemeral range (32768-60999) and outside the shared cluster's (15432-16431), Redis's
(26379-28378) and Kafka's (29092-29991).

Each cluster runs as a service account of its own (`account_name`: `berth-pg-<hash of the uuid>`,
made on first start when Berth is root, removed with the cluster), owning its data directory (0700):
a tenant who reaches its server's OS user reaches no other cluster's files.

A resource's `location` is `dedicated:<uuid>`. Starting, stopping and removing one cluster is
serialised across processes with a flock per uuid (`cluster_lock`); starting re-reads the record
under it, so a cluster is never created again after its deprovision began.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
from pathlib import Path

import psycopg
from sqlalchemy.orm import Session

from berth.addons import resources
from berth.addons.models import ACTIVE, CREATING
from berth.addons.postgres.cluster import ClusterError, LocalPostgres
from berth.addons.postgres.plans import PLANS
from berth.addons.postgres.tls import ensure_tls
from berth.config import Settings
from berth.db import Database
from berth.supervise import locks, loop, ports
from berth.supervise.accounts import AccountError, remove_service_account
from berth.supervise.ports import LOOPBACK

log = logging.getLogger(__name__)

SERVICE = "postgresql"  # provider.SERVICE (provider imports this module)
PORTS = range(16432, 17432)
# Connections beyond the plan's (the tenant role's CONNECTION LIMIT): Berth's admin sessions, and
# PostgreSQL's superuser_reserved_connections (3) come out of max_connections too.
ADMIN_CONNECTIONS = 10
LOCATION_PREFIX = "dedicated:"
UUID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}\Z")


class NotLive(ClusterError):
    """The add-on is gone or being deprovisioned: its cluster must not be (re)started."""


# -- places and names --------------------------------------------------------------------------

def root(settings: Settings) -> Path:
    return settings.data_dir / "backends" / "postgres-dedicated"


def directory(settings: Settings, uuid: str) -> Path:
    return root(settings) / directory_name(uuid)


def location(uuid: str) -> str:
    directory_name(uuid)
    return LOCATION_PREFIX + uuid


def directory_name(uuid: str) -> str:
    """`uuid`, checked to be safe as a file name (ValueError otherwise)."""
    if not UUID_RE.match(uuid):
        raise ValueError(f"not a valid add-on id: {uuid!r}")
    return uuid


def is_dedicated(where: str) -> bool:
    return where.startswith(LOCATION_PREFIX)


def uuid_of(where: str) -> str:
    return where[len(LOCATION_PREFIX):]


def account_name(uuid: str) -> str:
    """The service account the add-on's cluster runs as (an add-on id is too long for a user name)."""
    return "berth-pg-" + hashlib.sha256(directory_name(uuid).encode()).hexdigest()[:20]


def _cluster(settings: Settings, uuid: str, port: int, plan: str | None = None) -> LocalPostgres:
    """`plan` sizes max_connections when it starts (the default, 100, is below standard-0's 120)."""
    server = {"max_connections": str(PLANS[plan].connections + ADMIN_CONNECTIONS)} if plan in PLANS else None
    return LocalPostgres(directory(settings, uuid) / "cluster", port=port, settings=server,
                         account=account_name(uuid))


# -- locks and ports ---------------------------------------------------------------------------

def cluster_lock(settings: Settings, uuid: str) -> contextlib.AbstractContextManager[None]:
    """Serialises start/stop/remove of one cluster across threads and processes (re-entrant within a thread)."""
    directory(settings, uuid)  # validates the id before it names a file
    return locks.file_lock(root(settings) / ".locks" / f"{uuid}.lock")


def port_lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """Held from choosing a port until the record that reserves it is committed."""
    return locks.file_lock(root(settings) / ".locks" / "ports.lock")


def choose_port(taken: set[int], candidates: range = PORTS) -> int:
    """The lowest port in `candidates` that no record holds and nothing listens on now."""
    for port in ports.free_ports(LOOPBACK, candidates, taken=taken, reuse_address=False):
        return port
    raise ClusterError(f"no free port for a dedicated PostgreSQL cluster in {candidates.start}-{candidates.stop - 1}")


def taken_ports(session: Session) -> set[int]:
    """Ports the records of live dedicated clusters hold (whether or not they run now)."""
    return {int(resources.details(row)["port"]) for row in resources.live(session, SERVICE)
            if is_dedicated(row.location)}


# -- one cluster -------------------------------------------------------------------------------

def admin_url(settings: Settings, uuid: str, port: int) -> str | None:
    """The cluster's superuser URL, None while it has never been created (no password yet)."""
    cluster = _cluster(settings, uuid, port)
    return cluster.admin_url() if cluster.password_file.exists() else None


def _start(settings: Settings, uuid: str, port: int, plan: str) -> tuple[str, bool]:
    """Create (initdb) and start the cluster as needed; its admin URL and whether it was started."""
    cluster = _cluster(settings, uuid, port, plan)
    started = not cluster.is_running()
    cluster.start()
    ensure_tls(cluster, settings, f"berth-pg-{uuid}")
    marker = directory(settings, uuid) / "closed"
    if not marker.exists():  # done once, after a crash part-way too: the marker comes last
        with psycopg.connect(cluster.admin_url(), autocommit=True, connect_timeout=10) as admin:
            admin.execute("REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC")
        marker.touch()
    return cluster.admin_url(), started


def ensure_live(settings: Settings, database: Database, uuid: str) -> tuple[str, bool]:
    """Start the cluster of a live add-on (CREATING or ACTIVE, its record re-read under the lock):
    its admin URL and whether it had to be started. Raises NotLive, or ClusterError."""
    with cluster_lock(settings, uuid):
        with database.session(write=False) as session:
            row = resources.find(session, SERVICE, uuid)
            if row is None or row.state not in (CREATING, ACTIVE) or not is_dedicated(row.location):
                raise NotLive(f"dedicated Postgres add-on {uuid} is not live")
            port, plan = int(resources.details(row)["port"]), row.plan
        return _start(settings, uuid, port, plan)


def stop(settings: Settings, uuid: str, port: int, mode: str = "fast") -> bool:
    """Stop the cluster (sessions are ended); False when it was not running."""
    with cluster_lock(settings, uuid):
        cluster = _cluster(settings, uuid, port)
        if not cluster.is_running():
            return False
        cluster.stop(mode)
        return True


def remove(settings: Settings, uuid: str, port: int) -> None:
    """Stop the cluster at once (immediate: its data is going anyway), delete its files and its
    service account. Idempotent: a repeated call finishes what a crashed one began."""
    with cluster_lock(settings, uuid):
        cluster = _cluster(settings, uuid, port)
        if cluster.is_running():
            cluster.stop("immediate")
        shutil.rmtree(directory(settings, uuid), ignore_errors=True)
        if directory(settings, uuid).exists():
            raise ClusterError(f"cannot delete the files of dedicated Postgres cluster {uuid}")
        try:
            remove_service_account(account_name(uuid))
        except AccountError as error:
            raise ClusterError(f"cannot remove the account of dedicated Postgres cluster {uuid}: {error}") from error
    (root(settings) / ".locks" / f"{uuid}.lock").unlink(missing_ok=True)


# -- all clusters ------------------------------------------------------------------------------

def _live(database: Database, states: tuple[str, ...]) -> list[tuple[str, int]]:
    with database.session(write=False) as session:
        return [(row.id, int(resources.details(row)["port"])) for row in resources.live(session, SERVICE)
                if is_dedicated(row.location) and row.state in states]


def supervise(settings: Settings, database: Database) -> list[str]:
    """Restart every active add-on's cluster that is not running (call it every few seconds).
    Returns the ids restarted; failures are logged and retried on the next call."""
    port_of = dict(_live(database, (ACTIVE,)))

    def start(uuid: str) -> bool:
        try:
            return ensure_live(settings, database, uuid)[1]
        except NotLive:  # deprovisioned since it was listed
            return False

    return loop.restart_stopped(port_of, running=lambda uuid: _cluster(settings, uuid, port_of[uuid]).is_running(),
                                start=start, errors=(ClusterError, OSError, psycopg.Error),
                                what="dedicated Postgres cluster", log=log)


def stop_all(settings: Settings, database: Database) -> list[str]:
    """Stop every dedicated cluster Berth knows of (shutting the backends down)."""
    port_of = dict(_live(database, (CREATING, ACTIVE, resources.DELETING)))
    return loop.stop_each(port_of, stop=lambda uuid: stop(settings, uuid, port_of[uuid]),
                          errors=(ClusterError, OSError), what="dedicated Postgres cluster", log=log)


__all__ = ["LOCATION_PREFIX", "account_name", "NotLive", "PORTS", "admin_url", "choose_port", "cluster_lock", "directory",
           "ensure_live", "is_dedicated", "location", "port_lock", "remove", "root", "stop", "stop_all",
           "supervise", "taken_ports", "uuid_of"]
