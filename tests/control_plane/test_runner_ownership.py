"""Runner shard leases on the real PostgreSQL control plane: each app is owned by at most one runner,
shards spread over live runners, a dead runner's shards move within the lease, and a runner that
could not renew stops acting before another may take over."""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text

from berth.config import Settings
from berth.db import Database
from berth.platform.runner.ownership import OwnershipError, ShardOwnership, SoleOwnership, ownership_for, shard_of

SHARDS = 16
APPS = [str(uuid.UUID(int=n * 7919 + 1)) for n in range(200)]


@pytest.fixture
def database(postgres_database_url: str, tmp_path: Path) -> Iterator[Database]:
    database = Database(postgres_database_url)
    database.migrate(tmp_path)
    with database.write_engine.begin() as connection:
        connection.execute(text("DELETE FROM runner_leases"))
        connection.execute(text("DELETE FROM runner_nodes"))
    yield database
    database.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def runner(database: Database, name: str, *, lease: float = 10.0, clock: Clock | None = None,
           shards: int = SHARDS) -> ShardOwnership:
    return ShardOwnership(database, name, shards=shards, lease_seconds=lease, clock=clock or time.monotonic)


def owners(app_id: str, *runners: ShardOwnership) -> list[str]:
    return [r.holder for r in runners if r.owns(app_id)]


def test_a_lone_runner_owns_every_app_and_a_second_gets_a_fair_share(database: Database) -> None:
    a = runner(database, "node-a")
    a.refresh()
    assert len(a.held) == SHARDS and all(a.owns(app) for app in APPS)
    b = runner(database, "node-b")
    b.refresh()  # b is live now but nothing was free yet
    a.refresh()  # a sees two runners: it gives up half
    b.refresh()
    assert len(a.held) == len(b.held) == SHARDS // 2
    assert a.held.isdisjoint(b.held)
    assert all(len(owners(app, a, b)) == 1 for app in APPS)


def test_a_dead_runners_shards_are_taken_once_its_lease_expired_and_not_before(database: Database) -> None:
    a, b = runner(database, "node-a", lease=1.5), runner(database, "node-b", lease=1.5)
    a.refresh()
    b.refresh()
    a.refresh()
    b.refresh()
    before = set(a.held)
    assert before and len(b.held) == SHARDS - len(before)
    # a dies (no more renewals): b cannot take its shards while a's lease lasts
    b.refresh()
    assert b.held.isdisjoint(before)
    deadline = time.monotonic() + 5
    while len(b.held) < SHARDS and time.monotonic() < deadline:
        time.sleep(0.2)
        b.refresh()
    assert len(b.held) == SHARDS
    assert all(b.owns(app) for app in APPS)


def test_a_runner_that_cannot_renew_stops_acting_before_another_may_take_over(database: Database) -> None:
    clock = Clock()
    a = runner(database, "node-a", lease=10.0, clock=clock)
    a.refresh()
    app = APPS[0]
    assert a.owns(app)
    clock.now += 4.9
    assert a.owns(app)
    clock.now += 0.2  # past half the lease since its last renewal began: it stops acting
    assert not a.owns(app) and not a.valid()
    # ... while by the database's clock the lease still runs: nobody else may take the shard yet
    b = runner(database, "node-b")
    b.refresh()
    assert not b.owns(app)
    # a paused runner that wakes after its shard moved learns so at its next refresh
    with database.write_engine.begin() as connection:
        connection.execute(text("UPDATE runner_leases SET expires_at = timezone('utc', now()) "
                                "WHERE holder = 'node-a' AND shard = :shard"), {"shard": shard_of(app, SHARDS)})
    b.refresh()
    assert b.owns(app)
    a.refresh()
    assert not a.owns(app) and a.valid()
    assert owners(app, a, b) == ["node-b"]


def test_an_orderly_stop_frees_the_shards_at_once(database: Database) -> None:
    a, b = runner(database, "node-a"), runner(database, "node-b")
    a.refresh()
    b.refresh()
    a.release()
    assert not a.owns(APPS[0])
    b.refresh()  # a's row is gone: b is alone and the shards are free
    assert len(b.held) == SHARDS


def test_a_taken_over_shard_says_when_its_previous_runner_stopped(database: Database) -> None:
    """What the previous runner forwarded of an app's output (up to its last renewal of a lapsed lease,
    or its release) is not forwarded again by the one taking the app over."""
    a, b = runner(database, "node-a", lease=1.5), runner(database, "node-b", lease=1.5)
    started = time.time()
    a.refresh()
    assert a.handed_over_at(APPS[0]) == 0.0  # never held before
    renewed = time.time()
    a.refresh()  # its last renewal: then it dies
    deadline = time.monotonic() + 5
    while not b.owns(APPS[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
        b.refresh()
    assert b.owns(APPS[0])
    assert renewed - 0.5 < b.handed_over_at(APPS[0]) < time.time() - 1.0, (started, renewed, time.time())
    b.release()  # an orderly stop: a (back) takes the shards from the moment they were let go
    released = time.time()
    a.refresh()
    assert a.owns(APPS[0]) and released - 0.5 < a.handed_over_at(APPS[0]) < released + 0.5


def test_a_node_with_another_shard_count_refuses_to_run(database: Database) -> None:
    runner(database, "node-a").refresh()
    other = runner(database, "node-b", shards=64)
    with pytest.raises(OwnershipError, match="BERTH_RUNNER_SHARDS is 64"):
        other.refresh()
    assert not other.owns(APPS[0])


def test_sqlite_keeps_one_runner_owning_everything(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    settings = Settings(data_dir=tmp_path, database_url=database.url)
    ownership = ownership_for(database, settings)
    assert isinstance(ownership, SoleOwnership)
    ownership.refresh()
    assert all(ownership.owns(app) for app in APPS)
    database.dispose()
