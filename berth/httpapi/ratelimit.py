"""Per-account token bucket shared by all processes through the database (Heroku: 4,500/hour).

The common case is one autocommit statement that both finds the API key's account and
spends a token (`admit`); anything unusual (unknown key, empty or missing bucket, password
login) takes the slower `consume`, which tells those cases apart. On PostgreSQL a route's one
read can carry the admission in the same statement (`AdmittedRead`): one round trip per request.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from sqlalchemy import ColumnElement, Float, Select, bindparam, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from berth.accounts import Authorization, RateLimitBucket
from berth.db import Database, PreparedStatement, utcnow

SECONDS_PER_HOUR = 3600.0
_buckets = RateLimitBucket.__table__
_keys = Authorization.__table__


def _refilled(tokens: float, refreshed_at: float, now: float, capacity: int) -> float:
    return min(float(capacity), tokens + (now - refreshed_at) * capacity / SECONDS_PER_HOUR)


def _admit_statement(smaller: Any) -> Any:
    """Built once per dialect with bind parameters: building SQL expressions per request
    costs more than running them."""
    capacity = bindparam("capacity", type_=Float)
    refilled = smaller(capacity, _buckets.c.tokens
                       + (bindparam("now", type_=Float) - _buckets.c.refreshed_at)
                       * (capacity / SECONDS_PER_HOUR))
    key_owner = (select(_keys.c.account_id).where(
        _keys.c.token_hash == bindparam("digest"),
        or_(_keys.c.expires_at.is_(None), _keys.c.expires_at > bindparam("now_utc")))
        .scalar_subquery())
    cost = bindparam("cost", type_=Float)
    return (update(_buckets).where(_buckets.c.account_id == key_owner, refilled >= cost)
            .values(tokens=refilled - cost, refreshed_at=bindparam("now", type_=Float))
            .returning(_buckets.c.account_id, _buckets.c.tokens))


# SQLite's two-argument min() is PostgreSQL's least().
_ADMIT = {"postgresql": PreparedStatement(_admit_statement(func.least)),
          "sqlite": PreparedStatement(_admit_statement(func.min))}


def _admission_params(token_digest: str, capacity: int, cost: int) -> dict[str, Any]:
    return {"digest": token_digest, "now": time.time(), "now_utc": utcnow(),
            "capacity": float(capacity), "cost": float(cost)}


ADMISSION_PARAMETERS = frozenset(_admission_params("", 0, 0))


def admit(database: Database, token_digest: str, capacity: int, cost: int = 1) -> tuple[str, int] | None:
    """Find the account of a live API key and spend `cost` tokens, in one atomic statement.

    Returns (account_id, remaining), or None when the key is unknown or expired, or the
    bucket is missing or too empty: the caller then decides on the slow path. The key is
    matched by its SHA-256 through an index; the digest of a guess reveals nothing useful.
    """
    engine = database.lossy_engine  # a spend lost in a crash is harmless: no wait for the WAL flush
    rows = _ADMIT[engine.dialect.name].run(engine, _admission_params(token_digest, capacity, cost))
    return (rows[0][0], int(rows[0][1])) if rows else None


Rows = list[tuple[Any, ...]]


class AdmittedRead:
    """A read made for the caller that, on PostgreSQL, also admits the request: one round trip.

    `build(caller_id)` gives the read's SELECT for a caller given as an SQL expression: a bind
    parameter once the caller is known (`run`), or the admitted account's id in the same
    statement as the admission (`run_admitted`):

        WITH admitted AS (UPDATE rate_limit_buckets ... RETURNING account_id, tokens)
        SELECT admitted.*, read.* FROM admitted LEFT JOIN LATERAL (the read) read ON true

    The UPDATE is the very statement `admit` runs, so every refusal is the same. SQLite has no
    data-modifying WITH; there the two statements run one after the other (no round trip to save).
    """

    def __init__(self, build: Callable[[ColumnElement[str]], Select[Any]]) -> None:
        plain = build(bindparam("caller_id"))
        clashing = set(plain.compile().params) & ADMISSION_PARAMETERS
        if clashing:
            raise ValueError(f"an admitted read may not use the admission's parameters {sorted(clashing)}")
        self._plain = PreparedStatement(plain)
        admitted = _admit_statement(func.least).cte("admitted")
        # A constant column tells "the read found nothing" (all NULL) from a row of NULLs.
        read = build(admitted.c.account_id).add_columns(true().label("read_found")).lateral("read")
        *read_columns, found = read.c
        self._with_admission = PreparedStatement(
            select(admitted.c.account_id, admitted.c.tokens, found, *read_columns)
            .select_from(admitted.outerjoin(read, true())))

    def run(self, database: Database, caller_id: str, params: dict[str, Any]) -> Rows:
        """The read alone, for a caller already admitted."""
        return self._plain.run(database.autocommit_engine, {**params, "caller_id": caller_id})

    def run_admitted(self, database: Database, token_digest: str, capacity: int, cost: int,
                     params: dict[str, Any]) -> tuple[str, int, Rows] | None:
        """As `admit`, and the read's rows for the admitted account: (account_id, remaining, rows),
        or None (nothing read, nothing spent) for the slow path to tell the refusals apart."""
        engine = database.lossy_engine  # its only write is the admission: see `admit`
        if engine.dialect.name != "postgresql":
            admitted = admit(database, token_digest, capacity, cost)
            return None if admitted is None else (*admitted, self.run(database, admitted[0], params))
        rows = self._with_admission.run(
            engine, {**params, **_admission_params(token_digest, capacity, cost)})
        if not rows:
            return None
        return rows[0][0], int(rows[0][1]), [row[3:] for row in rows if row[2] is not None]


def consume(database: Database, account_id: str, capacity: int, cost: int = 1) -> tuple[bool, int]:
    """Take `cost` tokens if there are enough, creating the bucket if needed: (allowed, remaining).

    Runs in its own short transaction so the spend sticks even when the request fails
    and rolls back. On SQLite BEGIN IMMEDIATE serialises it; on Postgres the row lock does.
    """
    now = time.time()
    with database.write_engine.begin() as connection:
        row = connection.execute(
            select(_buckets.c.tokens, _buckets.c.refreshed_at)
            .where(_buckets.c.account_id == account_id).with_for_update()).first()
        if row is None:
            insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
            connection.execute(insert(_buckets).values(
                account_id=account_id, tokens=float(capacity), refreshed_at=now)
                .on_conflict_do_nothing())
            tokens = float(capacity)
        else:
            tokens = _refilled(row.tokens, row.refreshed_at, now, capacity)
        allowed = tokens >= cost
        if allowed and cost:
            tokens -= cost
        connection.execute(update(_buckets).where(_buckets.c.account_id == account_id)
                           .values(tokens=tokens, refreshed_at=now))
    return allowed, int(tokens)


def remaining(database: Database, account_id: str, capacity: int) -> int:
    return consume(database, account_id, capacity, cost=0)[1]
