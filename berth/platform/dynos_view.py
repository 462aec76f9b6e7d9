"""An app's dynos as users see them, in one shape for the API, the dashboard and (through the API)
the CLI: the formation dynos the runner recorded in `dynos` and the live one-off dynos.

Read only: the runner alone writes `dynos` rows. During a rolling deploy two rows may share a name
(the old release's dyno and the new one's); both are shown, the newest release first."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.platform import dyno_sizes, one_off_dynos
from berth.platform.models import App, Dyno, OneOffDyno

# A `down` row is a dyno that was replaced or stopped: history, not a dyno of the app.
FORMATION_LIVE_STATES = ("starting", "up", "crashed")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@dataclass(frozen=True)
class DynoView:
    id: str
    type: str
    number: int
    state: str
    command: str
    size: dyno_sizes.DynoSize
    release_id: str | None
    release_version: int | None
    app: App
    exit_code: int | None
    one_off: bool
    created_at: datetime   # when it was started
    updated_at: datetime   # when its state last changed ("up for ...")

    @property
    def name(self) -> str:
        return f"{self.type}.{self.number}"


def is_id(ref: str) -> bool:
    return bool(_UUID.match(ref))


def live_formation_dynos(session: Session, app: App) -> list[Dyno]:
    return list(session.scalars(select(Dyno).where(Dyno.app_id == app.id,
                                                   Dyno.state.in_(FORMATION_LIVE_STATES))))


def of_formation(dyno: Dyno, app: App) -> DynoView:
    return DynoView(dyno.id, dyno.type, dyno.number, dyno.state, dyno.command, dyno_sizes.of_stored(dyno.size),
                    dyno.release_id, dyno.release_version, app, dyno.exit_status, False,
                    dyno.created_at, dyno.updated_at)


def of_one_off(dyno: OneOffDyno, app: App) -> DynoView:
    return DynoView(dyno.id, dyno.type, dyno.number, dyno.state, dyno.command, dyno_sizes.of_stored(dyno.size),
                    dyno.release_id, dyno.release.version, app, dyno.exit_code, True,
                    dyno.created_at, dyno.updated_at)


def _display_order(view: DynoView) -> tuple[str, int, int, float]:
    return view.type, view.number, -(view.release_version or 0), -view.created_at.timestamp()


def app_dynos(session: Session, app: App) -> list[DynoView]:
    """Every dyno of the app: by type and number, the newest release first where a name repeats."""
    views = [of_formation(dyno, app) for dyno in live_formation_dynos(session, app)]
    views += [of_one_off(dyno, app) for dyno in one_off_dynos.running(session, app)]
    return sorted(views, key=_display_order)


def find(session: Session, app: App, ref: str) -> DynoView:
    """By id or name (`web.1`: the newest release's when two share it). A formation dyno that does
    not run is not found; a one-off that ended still is (how it ended: its state and exit code)."""
    for view in app_dynos(session, app):
        if ref in (view.id, view.name):
            return view
    return of_one_off(one_off_dynos.find(session, app, ref), app)  # NotFound when it never ran
