"""An app's formation: process type -> quantity and size, stored for the run core (app.json's
`formation` sets it on an app's first deploy; what the user scaled already is kept)."""
from __future__ import annotations

from typing import Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from berth.platform.app_manifest import ProcessFormation
from berth.platform.models import App, Formation


def formation_of(session: Session, app: App) -> dict[str, Formation]:
    return {row.type: row for row in session.scalars(select(Formation).where(Formation.app_id == app.id))}


def set_missing(session: Session, app: App, wanted: Mapping[str, ProcessFormation]) -> list[str]:
    """Record the process types the app has no formation for yet; the types recorded."""
    present = formation_of(session, app)
    added = [kind for kind in wanted if kind not in present]
    session.add_all(Formation(app_id=app.id, type=kind, quantity=wanted[kind].quantity, size=wanted[kind].size)
                    for kind in added)
    session.flush()
    return added


def remove(session: Session, app: App, types: list[str]) -> None:
    if types:
        session.execute(delete(Formation).where(Formation.app_id == app.id, Formation.type.in_(types)))
        session.flush()
