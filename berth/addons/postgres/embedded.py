"""The PostgreSQL cluster Berth owns when no external server is configured (BERTH_POSTGRES_SERVERS).

It lives in `data_dir/backends/postgres/`: `cluster/` (the data directory), `cluster.password`
(its superuser's password, 0600, written by `LocalPostgres`), `port` (the port it was first given)
and `lock`. It serves TLS (`sslmode=require`, what `heroku pg:psql` asks for on any host but
`localhost`) with a certificate from the installation's CA (`berth.certificates`) for the loopback
addresses, issued on the first start that finds none. Tenants' DATABASE_URLs name the port, so it never changes: it is chosen once, outside
Linux's ephemeral range (32768-60999) so that no outgoing connection holds it when the cluster
restarts, and remembered. When it is created, PUBLIC loses CONNECT on `postgres` and `template1`,
so tenants reach only their own databases (an external server is the operator's to configure).
When Berth is root the cluster runs as the `berth-postgres` service account (`LocalPostgres`'s
default), which owns its data directory; dedicated clusters each have an account of their own.
Every function takes the lock (`flock`), so web, worker and backends processes may all call them
at once: only one initdb or start happens.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import psycopg

from berth.addons.postgres.cluster import ClusterError, LocalPostgres, PortInUse
from berth.addons.postgres.tls import ensure_tls
from berth.config import Settings
from berth.supervise import locks, ports
from berth.supervise.ports import LOOPBACK

log = logging.getLogger(__name__)

PORTS = range(15432, 16432)


def root(settings: Settings) -> Path:
    return settings.data_dir / "backends" / "postgres"


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[Path]:
    directory = root(settings)
    with locks.file_lock(directory / "lock"):
        yield directory


def _remembered_port(directory: Path) -> int | None:
    try:
        return int((directory / "port").read_text().strip())
    except (OSError, ValueError):
        return None


def _start(directory: Path, settings: Settings) -> LocalPostgres:
    """The cluster, started and serving TLS; the first start picks a free port and remembers it."""
    cluster = _start_plain(directory)
    ensure_tls(cluster, settings, "berth-postgres")
    return cluster


def _start_plain(directory: Path) -> LocalPostgres:
    port = _remembered_port(directory)
    if port is not None:
        cluster = LocalPostgres(directory / "cluster", port=port)
        if not cluster.is_running():
            log.info("starting the embedded PostgreSQL cluster on port %d", port)
        cluster.start()
        return cluster
    last_error: ClusterError | None = None
    for candidate in ports.free_ports(LOOPBACK, PORTS, reuse_address=False):
        cluster = LocalPostgres(directory / "cluster", port=candidate)
        try:
            cluster.start()
        except PortInUse as error:  # lost a race for the port: try the next one
            last_error = error
            continue
        _close_shared_databases(cluster)
        (directory / "port").write_text(f"{cluster.port}\n")
        log.info("embedded PostgreSQL cluster created in %s, port %d", cluster.data_dir, cluster.port)
        return cluster
    raise ClusterError(f"no free port for the embedded PostgreSQL cluster in {PORTS}") from last_error


def _close_shared_databases(cluster: LocalPostgres) -> None:
    """Tenants may connect only to their own database: by default PUBLIC may connect to (and make
    temporary tables in) `postgres` and `template1`, outside any quota. Done once, when created."""
    with psycopg.connect(cluster.admin_url(), autocommit=True, connect_timeout=10) as admin:
        admin.execute("REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC")


def ensure_embedded(settings: Settings) -> str:
    """The embedded cluster's admin URL (postgresql://berth:…@127.0.0.1:PORT/postgres), after
    creating (initdb) and starting it if needed. Idempotent; raises ClusterError on failure."""
    with _locked(settings) as directory:
        return _start(directory, settings).admin_url()


def supervise(settings: Settings) -> None:
    """For the backends process, every few seconds: the cluster runs (started again if it died)."""
    ensure_embedded(settings)


def stop(settings: Settings) -> None:
    """Stop the cluster (fast shutdown: sessions are ended); a no-op when it does not run."""
    with _locked(settings) as directory:
        port = _remembered_port(directory)
        if port is None:
            return
        LocalPostgres(directory / "cluster", port=port).stop()


__all__ = ["PORTS", "ensure_embedded", "root", "stop", "supervise"]
