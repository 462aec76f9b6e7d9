"""Per-account token bucket shared by all processes through the database (Heroku: 4,500/hour).

The common case is one autocommit statement that both finds the API key's account and
spends a token (`admit`); anything unusual (unknown key, empty or missing bucket, password
login) takes the slower `consume`, which tells those cases apart.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Float, bindparam, func, or_, select, update
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


def admit(database: Database, token_digest: str, capacity: int, cost: int = 1) -> tuple[str, int] | None:
    """Find the account of a live API key and spend `cost` tokens, in one atomic statement.

    Returns (account_id, remaining), or None when the key is unknown or expired, or the
    bucket is missing or too empty: the caller then decides on the slow path. The key is
    matched by its SHA-256 through an index; the digest of a guess reveals nothing useful.
    """
    engine = database.lossy_engine  # a spend lost in a crash is harmless: no wait for the WAL flush
    rows = _ADMIT[engine.dialect.name].run(engine, {
        "digest": token_digest, "now": time.time(), "now_utc": utcnow(),
        "capacity": float(capacity), "cost": float(cost)})
    return (rows[0][0], int(rows[0][1])) if rows else None


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
