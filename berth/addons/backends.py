"""`python -m berth.addons.backends`: the servers the first-party add-ons need, where no external
ones are configured, started and kept running (`make run` starts this process).

Every few seconds: the embedded PostgreSQL cluster is running (unless BERTH_POSTGRES_SERVERS names
servers); every active dedicated Postgres add-on's own cluster is running (whether or not servers
are configured); every local Redis add-on's `redis-server` is running (those on BERTH_REDIS_SERVERS
are the operator's); the embedded Kafka broker is running once any Kafka add-on exists (unless
BERTH_KAFKA_BOOTSTRAP names one), and Kafka provisions answered 202 that no web process is finishing
are finished. A backend that died is started again. Every minute the log store
drops lines past their plan's retention, and Postgres databases over their plan's storage lose
write access (and regain it when back under), and the Kafka reconciler removes from the embedded broker
what no record owns. On SIGTERM everything this process supervises is
stopped.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from berth.addons import resources
from berth.config import Settings
from berth.db import Database
from berth.process import start_process
from berth.supervise import loop

if TYPE_CHECKING:
    from berth.addons.kafka.provider import KafkaProvider

log = logging.getLogger("berth.backends")
SUPERVISE_SECONDS = 5.0
PURGE_SECONDS = 60.0


def supervise_once(settings: Settings, database: Database) -> None:
    from berth.addons.kafka import broker as kafka_broker
    from berth.addons.postgres import dedicated as postgres_dedicated
    from berth.addons.postgres import embedded as postgres_embedded
    from berth.addons.redis import instances as redis_instances

    checks: list[tuple[str, Callable[[], object]]] = []
    if not settings.postgres_servers:
        checks.append(("postgresql", lambda: postgres_embedded.supervise(settings)))
    checks.append(("postgresql dedicated", lambda: postgres_dedicated.supervise(settings, database)))
    checks.append(("redis", lambda: redis_instances.supervise(settings, database)))
    if not settings.kafka_bootstrap and _has_live(database, "kafka"):
        checks.append(("kafka", lambda: kafka_broker.supervise(settings)))
        checks.append(("kafka provisions", lambda: _kafka_provider(settings, database).resume_pending()))
    loop.run_each(checks, log, f"supervising %s failed; trying again in {SUPERVISE_SECONDS:.0f} s")


def stop_everything(settings: Settings, database: Database) -> None:
    from berth.addons.kafka import broker as kafka_broker
    from berth.addons.postgres import dedicated as postgres_dedicated
    from berth.addons.postgres import embedded as postgres_embedded
    from berth.addons.redis import instances as redis_instances

    loop.run_each((("redis", lambda: redis_instances.stop_all(settings, database)),
                   ("postgresql dedicated", lambda: postgres_dedicated.stop_all(settings, database)),
                   ("kafka", lambda: kafka_broker.stop(settings)),
                   ("postgresql", lambda: postgres_embedded.stop(settings))), log, "stopping %s failed")


def purge_logs(settings: Settings, database: Database) -> None:
    from berth.addons.logging.provider import LogsProvider

    try:
        removed = LogsProvider(database, settings).purge()
    except Exception:
        log.exception("purging the log store failed")
        return
    if removed:
        log.info("log store: %d lines past their retention removed", removed)


def enforce_postgres_limits(settings: Settings, database: Database) -> None:
    """Databases over their plan's storage lose write access (and get it back), as on Heroku."""
    from berth.addons.postgres.provider import PostgresProvider

    provider = PostgresProvider(database, settings)
    try:
        changes = provider.enforce_storage_limits()
        provider.notify_storage_changes(changes)
    except Exception:
        log.exception("enforcing Postgres storage limits failed")
        return
    for change in changes:
        log.info("postgresql %s: %s (%d of %d bytes)", change.uuid,
                 "blocked" if change.blocked else "restricted" if change.restricted else "restored",
                 change.size_bytes, change.limit_bytes)


def reconcile_kafka(settings: Settings, database: Database) -> None:
    from berth.addons.kafka.reconcile import reconcile

    try:
        reconcile(_kafka_provider(settings, database))
    except Exception:
        log.exception("reconciling Kafka failed; trying again in %.0f s", PURGE_SECONDS)


def _kafka_provider(settings: Settings, database: Database) -> "KafkaProvider":
    from berth.addons.kafka.provider import KafkaProvider

    return KafkaProvider(database, settings)


def _has_live(database: Database, service: str) -> bool:
    with database.session(write=False) as session:
        return bool(resources.live(session, service))


def housekeeping(settings: Settings, database: Database) -> None:
    """The minutely round: each step logs its own failure, and the next still runs."""
    purge_logs(settings, database)
    enforce_postgres_limits(settings, database)
    reconcile_kafka(settings, database)


def main() -> None:
    settings, database, stop = start_process()
    log.info("supervising add-on backends under %s", settings.data_dir / "backends")
    loop.run_until_stopped(stop, (loop.Every(SUPERVISE_SECONDS, lambda: supervise_once(settings, database)),
                                  loop.Every(PURGE_SECONDS, lambda: housekeeping(settings, database))))
    stop_everything(settings, database)


if __name__ == "__main__":
    main()
