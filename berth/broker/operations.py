"""Add-on operations: recorded provider calls, one job type of the job queue (`berth.jobs`).

An operation is written in the same transaction as the change that needs it; a worker claims it,
calls the provider and applies the answer. At most one operation of an add-on runs at a time.
Every provider call carries the add-on's uuid, so running one twice is harmless.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from berth.broker.models import AddOn, Operation
from berth.db import PreparedStatement, new_id, utcnow
from berth.jobs.queue import JobState, Queue

PROVISION, CHANGE_PLAN, DEPROVISION = "provision", "change_plan", "deprovision"
PENDING, RUNNING, DONE, FAILED = JobState.PENDING, JobState.RUNNING, JobState.DONE, JobState.FAILED
# The lease is longer than any provider call (connect + read timeouts), so a live worker never loses it.
QUEUE = Queue(Operation, exclusive_on=Operation.addon_id, lease=timedelta(minutes=2))


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
