"""The runner's side of the control plane's tables: `dynos` rows kept equal to what the backend
runs (the API, the dashboard and the router read them), and users' `dyno_actions` taken."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from berth.db import Database, utcnow
from berth.platform.dynos.backend import DynoStatus
from berth.platform.models import App, Dyno, DynoAction

log = logging.getLogger("berth.runner")
SHOWN = ("starting", "up", "crashed")  # a `down` dyno is gone from the list, as on Heroku


@dataclass(frozen=True)
class DynoFacts:
    """What the backend's status does not say: kept from the start (and from the row after a restart)."""

    command: str
    size: str
    release_id: str | None


def sync(database: Database, observed: list[DynoStatus], facts: dict[str, DynoFacts],
         owns: Callable[[str], bool] = lambda app_id: True) -> None:
    """Rows for every dyno the backend runs or that crashed; rows of others deleted. Writes only what
    changed; an app destroyed meanwhile is skipped (its rows went with it). Only the rows of apps
    this runner `owns` are touched: other runners keep theirs."""
    shown = {status.id: status for status in observed if status.state in SHOWN}
    with database.transaction() as session:
        rows = {row.backend_id: row for row in session.scalars(select(Dyno)) if owns(row.app_id)}
        gone = [backend_id for backend_id in rows if backend_id not in shown]
        if gone:
            session.execute(delete(Dyno).where(Dyno.backend_id.in_(gone)))
        apps = set(session.scalars(select(App.id)))
        for backend_id, status in shown.items():
            if status.app_id not in apps:
                continue
            row = rows.get(backend_id)
            if row is None:
                kind, _, number = status.name.rpartition(".")
                known = facts.get(backend_id) or DynoFacts("", "standard-1x", None)
                session.add(Dyno(app_id=status.app_id, type=kind, number=int(number), command=known.command,
                                 size=known.size, release_id=known.release_id, release_version=status.release_version,
                                 state=status.state, exit_status=status.exit_status, backend_id=backend_id,
                                 address=status.address))
            elif (row.state, row.exit_status, row.address) != (status.state, status.exit_status, status.address):
                row.state, row.exit_status, row.address, row.updated_at = (
                    status.state, status.exit_status, status.address, utcnow())
        try:
            session.flush()
        except IntegrityError:  # an app destroyed between the two reads: next round
            log.info("an app went away while its dynos were recorded; recording again next round")
            raise


def known_facts(database: Database) -> dict[str, DynoFacts]:
    """The facts of dynos recorded before this runner started (adopted ones)."""
    with database.session(write=False) as session:
        return {row.backend_id: DynoFacts(row.command, row.size, row.release_id) for row in session.scalars(select(Dyno))}


@dataclass(frozen=True)
class Request:
    app_id: str
    action: str
    type: str | None
    name: str | None

    def matches(self, status: DynoStatus) -> bool:
        if status.app_id != self.app_id:
            return False
        if self.name:
            return status.name == self.name
        if self.type:
            return status.name.rpartition(".")[0] == self.type
        return True


def take_requests(database: Database, owns: Callable[[str], bool] = lambda app_id: True) -> list[Request]:
    """Users' pending restart/stop requests for apps this runner `owns`, marked done: the runner acts
    on them this round. A round with none (nearly every one) only reads."""
    with database.session(write=False) as session:
        if session.scalar(select(DynoAction.id).where(DynoAction.done_at.is_(None)).limit(1)) is None:
            return []
    with database.transaction() as session:
        pending = [action for action in session.scalars(select(DynoAction).where(DynoAction.done_at.is_(None))
                                                        .order_by(DynoAction.created_at)) if owns(action.app_id)]
        now = utcnow()
        for action in pending:
            action.done_at = now
        return [Request(action.app_id, action.action, action.type, action.name) for action in pending]
