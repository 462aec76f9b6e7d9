"""Which apps this runner reconciles, when several runners share one control-plane database.

Apps fall into a fixed number of shards (BERTH_RUNNER_SHARDS, a hash of the app id). Each shard is
leased to at most one runner by a `runner_leases` row: renewed every round, taken over by another
runner once it expired (BERTH_RUNNER_LEASE_SECONDS after its holder's last renewal). Runners also
renew a `runner_nodes` row, so each knows how many share the shards: one holding more than its fair
share gives the surplus up, one holding less takes free ones.

A runner acts on a shard only while its lease is surely still its own: until its last successful
renewal *started* plus half the lease, by its own monotonic clock, while expiry is judged by the
database's clock from that renewal on. A paused or cut-off runner therefore stops acting well before
another may take over, whatever the machines' clocks say.

On SQLite there is one machine and one runner: it owns every app (`SoleOwnership`).
"""
from __future__ import annotations

import logging
import math
import time
import zlib
from typing import Callable, Protocol

from sqlalchemy import bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from berth.config import Settings
from berth.db import Database
from berth.nodes import node_name

log = logging.getLogger("berth.runner")
_NOW = "timezone('utc', now())"  # the columns hold naive UTC, as every timestamp of Berth's
_UNTIL = f"{_NOW} + make_interval(secs => :lease)"


class OwnershipError(RuntimeError):
    """This runner's settings disagree with the control plane's: it must not run."""


class Ownership(Protocol):
    def refresh(self) -> None:
        """Renew, take or give up leases (once per round)."""

    def owns(self, app_id: str) -> bool:
        """This runner may act on the app now."""

    def valid(self) -> bool:
        """The leases are fresh: apps not owned are surely someone else's (or nobody's yet)."""

    def release(self) -> None:
        """An orderly stop: the shards are free at once."""

    def handed_over_at(self, app_id: str) -> float:
        """Unix time from which the app's previous runner may no longer have acted (its last renewal
        of a lapsed lease, or its orderly release): what it forwarded until then is not this one's to
        forward again. 0.0 when no other runner held it since this one started."""


class SoleOwnership:
    """One runner, one machine: every app is its own."""

    def refresh(self) -> None:
        pass

    def owns(self, app_id: str) -> bool:
        return True

    def valid(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def handed_over_at(self, app_id: str) -> float:
        return 0.0


def shard_of(app_id: str, shards: int) -> int:
    """Stable across processes and machines (not Python's salted hash)."""
    return zlib.crc32(app_id.encode()) % shards


class ShardOwnership:
    def __init__(self, database: Database, holder: str, *, shards: int, lease_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if shards < 1:
            raise OwnershipError(f"BERTH_RUNNER_SHARDS must be at least 1, got {shards}")
        self.database, self.holder, self.shards, self.lease_seconds = database, holder, shards, lease_seconds
        self._clock = clock
        self._held: frozenset[int] = frozenset()
        self._valid_until = 0.0
        self._checked = False
        self._handed_over: dict[int, float] = {}  # shard → when its previous holder stopped (Unix time)

    @property
    def held(self) -> frozenset[int]:
        return self._held if self.valid() else frozenset()

    def valid(self) -> bool:
        return self._clock() < self._valid_until

    def owns(self, app_id: str) -> bool:
        return self.valid() and shard_of(app_id, self.shards) in self._held

    def handed_over_at(self, app_id: str) -> float:
        return self._handed_over.get(shard_of(app_id, self.shards), 0.0)

    def refresh(self) -> None:
        started = self._clock()
        try:
            with self.database.write_engine.begin() as connection:
                if not self._checked:
                    self._check_shards(connection)
                held = self._renew(connection)
        except SQLAlchemyError as error:  # the database away: act on nothing once the leases may lapse
            log.warning("could not renew the runner's shard leases (%s); acting on none once they lapse",
                        type(error).__name__)
            return
        if held != self._held:
            log.info("runner %s holds %d of %d shards", self.holder, len(held), self.shards)
        self._held, self._valid_until = frozenset(held), started + self.lease_seconds / 2

    def release(self) -> None:
        self._held, self._valid_until = frozenset(), 0.0
        try:
            with self.database.write_engine.begin() as connection:
                connection.execute(text(f"UPDATE runner_leases SET holder = NULL, expires_at = {_NOW} "
                                        "WHERE holder = :me"), {"me": self.holder})
                connection.execute(text("DELETE FROM runner_nodes WHERE holder = :me"), {"me": self.holder})
        except SQLAlchemyError:
            log.warning("could not give up the runner's shard leases; they lapse in %.0f s", self.lease_seconds)

    def _check_shards(self, connection: object) -> None:
        execute = connection.execute  # type: ignore[attr-defined]
        execute(text("INSERT INTO runner_leases (shard, holder, expires_at) "
                     "SELECT s, NULL, timestamp '1970-01-01' FROM generate_series(0, :last) AS s "
                     "WHERE NOT EXISTS (SELECT 1 FROM runner_leases) ON CONFLICT (shard) DO NOTHING"),
                {"last": self.shards - 1})
        count = execute(text("SELECT count(*) FROM runner_leases")).scalar_one()
        if count != self.shards:
            raise OwnershipError(
                f"the control plane has {count} runner shards but BERTH_RUNNER_SHARDS is {self.shards} on this "
                f"node: set the same value on every node (to change it, stop every runner and empty the "
                f"runner_leases table first)")
        self._checked = True

    def _renew(self, connection: object) -> set[int]:
        execute = connection.execute  # type: ignore[attr-defined]
        params = {"me": self.holder, "lease": self.lease_seconds}
        execute(text(f"INSERT INTO runner_nodes (holder, expires_at) VALUES (:me, {_UNTIL}) "
                     "ON CONFLICT (holder) DO UPDATE SET expires_at = EXCLUDED.expires_at"), params)
        live = execute(text(f"SELECT count(*) FROM runner_nodes WHERE expires_at > {_NOW}")).scalar_one()
        held = set(execute(text(f"UPDATE runner_leases SET expires_at = {_UNTIL} "
                                f"WHERE holder = :me AND expires_at > {_NOW} RETURNING shard"), params).scalars())
        share = math.ceil(self.shards / max(1, live))
        if len(held) > share:  # another runner came: it takes what this one gives up
            surplus = sorted(held)[share:]
            execute(text(f"UPDATE runner_leases SET holder = NULL, expires_at = {_NOW} "
                         "WHERE holder = :me AND shard IN :shards").bindparams(bindparam("shards", expanding=True)),
                    {**params, "shards": surplus})
            held -= set(surplus)
        elif len(held) < share:
            # A lapsed lease's holder last renewed it `lease` before it expired; a released one (no
            # holder) was let go when it expired.
            taken = execute(text(
                f"WITH free AS (SELECT shard, holder, expires_at FROM runner_leases WHERE expires_at <= {_NOW} "
                "ORDER BY shard LIMIT :want FOR UPDATE SKIP LOCKED) "
                f"UPDATE runner_leases AS lease SET holder = :me, expires_at = {_UNTIL} FROM free "
                "WHERE lease.shard = free.shard RETURNING lease.shard, extract(epoch FROM free.expires_at) - "
                "CASE WHEN free.holder IS NULL THEN 0 ELSE :lease END"),
                {**params, "want": share - len(held)}).all()
            for shard, stopped in taken:
                self._handed_over[shard] = float(stopped)
            held |= {shard for shard, _ in taken}
        execute(text(f"DELETE FROM runner_nodes WHERE expires_at < {_NOW} - interval '1 hour'"))
        return held


def ownership_for(database: Database, settings: Settings) -> Ownership:
    if database.is_sqlite:
        return SoleOwnership()
    # Named by its node, stable across restarts: a restarted runner keeps its shards (and the dynos
    # it adopts) while their leases last.
    return ShardOwnership(database, node_name(settings), shards=settings.runner_shards,
                          lease_seconds=settings.runner_lease_seconds)
