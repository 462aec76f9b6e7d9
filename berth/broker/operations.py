"""The operation queue: recorded provider calls, claimed by workers, retried with backoff.

An operation is written in the same transaction as the change that needs it. Workers claim
one with `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises writers) and hold a lease:
a running operation whose lease passed was abandoned by a dead worker and is claimed again.
Every provider call carries the add-on's uuid, so running one twice is harmless.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, Update, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from berth.broker.models import AddOn, Operation
from berth.db import Database, PreparedStatement, UTCDateTime, new_id, utcnow

PROVISION, CHANGE_PLAN, DEPROVISION = "provision", "change_plan", "deprovision"
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
# Longer than any provider call (connect + read timeouts), so a live worker never loses its lease.
LEASE = timedelta(minutes=2)
MAX_BACKOFF_SECONDS = 3600.0


class _HasId(Protocol):
    id: str


_operations = Operation.__table__
_now = bindparam("now", type_=_operations.c.created_at.type)
_ENQUEUE = PreparedStatement(insert(_operations).values(
    id=bindparam("id"), addon_id=bindparam("addon_id"), kind=bindparam("kind"), state=PENDING,
    target_plan_id=bindparam("target_plan_id"), attempts=0, next_attempt_at=_now, created_at=_now,
    updated_at=_now))


def enqueue(session: Session, addon: _HasId, kind: str, *, target_plan_id: str | None = None) -> str:
    """Record an operation for a worker, in the caller's transaction; its id."""
    if session.new:  # written straight to the cursor: an add-on the ORM has yet to insert must go first
        session.flush()
    operation_id = new_id()
    _ENQUEUE.run_in(session, {"id": operation_id, "addon_id": addon.id, "kind": kind,
                              "target_plan_id": target_plan_id, "now": utcnow()})
    return operation_id


def open_operation(session: Session, addon: AddOn) -> Operation | None:
    """The add-on's pending or running operation, if any."""
    return session.scalar(select(Operation).where(
        Operation.addon_id == addon.id, Operation.state.in_((PENDING, RUNNING)))
        .order_by(Operation.created_at))


def _oldest_due(now: Any = None) -> Select[tuple[str]]:
    """The oldest due operation whose add-on has no other operation running (`now`: a bind
    parameter for a statement prepared once; the current time by default)."""
    now = utcnow() if now is None else now
    other = aliased(Operation)
    busy = exists().where(other.addon_id == Operation.addon_id, other.id != Operation.id,
                          other.state == RUNNING, other.lease_until > now)
    due = or_(and_(Operation.state == PENDING, Operation.next_attempt_at <= now),
              and_(Operation.state == RUNNING, Operation.lease_until <= now))
    return (select(Operation.id).where(due, ~busy)
            .order_by(Operation.next_attempt_at, Operation.created_at).limit(1))


def anything_due(database: Database) -> bool:
    """A look without the write lock: most of the time nothing is due."""
    with database.session(write=False) as session:
        return session.scalar(_oldest_due()) is not None


def count_due(database: Database, limit: int) -> int:
    """How many operations are due, counting no further than `limit`."""
    with database.session(write=False) as session:
        due = _oldest_due().limit(limit).subquery()
        return session.scalar(select(func.count()).select_from(due)) or 0


def claim(*returning: Any) -> Update:
    """Take the oldest due operation: one statement, so claiming costs no more than the row it
    updates (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers). Parameters:
    `now` and `lease_until`. Its `attempts` after the claim identify this claim: the answer is
    applied only while the operation is still running with them (`still_claimed`)."""
    now = bindparam("now", type_=UTCDateTime())
    chosen = _oldest_due(now).with_for_update(skip_locked=True, of=Operation).scalar_subquery()
    return (update(Operation).where(Operation.id == chosen)
            .values(state=RUNNING, lease_until=bindparam("lease_until", type_=UTCDateTime()),
                    attempts=Operation.attempts + 1, updated_at=now)
            .returning(Operation.id, Operation.attempts, *returning))


def claim_times() -> dict[str, datetime]:
    now = utcnow()
    return {"now": now, "lease_until": now + LEASE}


def still_claimed(operation_id: Any, attempts: Any) -> ColumnElement[bool]:
    """SQL: the operation is still running under the claim that read `attempts`; a worker whose
    lease passed and whose operation another worker claimed again applies nothing."""
    return exists().where(Operation.id == operation_id, Operation.state == RUNNING,
                          Operation.attempts == attempts)


# Finishing a claimed operation: parameters operation_id, attempts, state, message, detail, now.
FINISH_CLAIMED = PreparedStatement(
    update(Operation).where(Operation.id == bindparam("operation_id"), Operation.state == RUNNING,
                            Operation.attempts == bindparam("attempts"))
    .values(state=bindparam("state"), lease_until=None, message=bindparam("message"),
            detail=bindparam("detail"), updated_at=bindparam("now", type_=UTCDateTime())))


def finish(operation: Operation, *, message: str | None = None, detail: str | None = None,
           failed: bool = False) -> None:
    operation.state = FAILED if failed else DONE
    operation.lease_until = None
    operation.message, operation.detail = message, detail


def retry_later(operation: Operation, base_seconds: float, detail: str) -> None:
    delay = min(MAX_BACKOFF_SECONDS, base_seconds * 2 ** max(0, operation.attempts - 1))
    operation.state, operation.lease_until = PENDING, None
    operation.next_attempt_at = utcnow() + timedelta(seconds=delay)
    operation.detail = detail


def release_abandoned(database: Database) -> int:
    """On a single worker's start (SQLite): whatever was running belonged to a dead worker."""
    with database.transaction() as session:
        result = session.execute(update(Operation).where(Operation.state == RUNNING)
                                 .values(state=PENDING, lease_until=None))
        return result.rowcount or 0
