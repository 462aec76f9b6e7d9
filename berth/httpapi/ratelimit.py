"""Per-account token bucket shared by all processes through the database (Heroku: 4,500/hour)."""
from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from berth.accounts import RateLimitBucket
from berth.db import Database

SECONDS_PER_HOUR = 3600.0


def _refilled(tokens: float, refreshed_at: float, now: float, capacity: int) -> float:
    return min(float(capacity), tokens + (now - refreshed_at) * capacity / SECONDS_PER_HOUR)


def consume(database: Database, account_id: str, capacity: int, cost: int = 1) -> tuple[bool, int]:
    """Take `cost` tokens if there are enough. Returns (allowed, remaining).

    Runs in its own short transaction so the spend sticks even when the request fails
    and rolls back. On SQLite BEGIN IMMEDIATE serialises it; on Postgres the row lock does.
    """
    now = time.time()
    table = RateLimitBucket.__table__
    with database.write_engine.begin() as connection:
        row = connection.execute(
            select(table.c.tokens, table.c.refreshed_at)
            .where(table.c.account_id == account_id).with_for_update()).first()
        if row is None:
            insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
            connection.execute(insert(table).values(
                account_id=account_id, tokens=float(capacity), refreshed_at=now)
                .on_conflict_do_nothing())
            tokens = float(capacity)
        else:
            tokens = _refilled(row.tokens, row.refreshed_at, now, capacity)
        allowed = tokens >= cost
        if allowed and cost:
            tokens -= cost
        connection.execute(update(table).where(table.c.account_id == account_id)
                           .values(tokens=tokens, refreshed_at=now))
    return allowed, int(tokens)


def remaining(database: Database, account_id: str, capacity: int) -> int:
    return consume(database, account_id, capacity, cost=0)[1]
