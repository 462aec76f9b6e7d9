"""Formation dyno rows written exactly as the runner writes them (test data, not a mock): one
`Dyno` row per dyno its backend runs, of a release, in a state; and reading back what users asked
for (`DynoAction` rows) and the app[api] lines they left in the app's log."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from berth import crypto
from berth.config import load_settings
from berth.db import Database, utcnow
from berth.platform.logs.models import LogLine
from berth.platform.models import App, Dyno, DynoAction, Release


def database_of(server_env: dict[str, str]) -> Database:
    """A live server's control-plane database, from the environment it was started with (its keys
    too: loading an app reads its owner's encrypted columns)."""
    settings = load_settings(server_env)
    crypto.configure(crypto.load_or_create_keys(settings.secret_keys, settings.data_dir))
    return Database(settings.database_url)


def add_dyno(database: Database, app_name: str, name: str = "web.1", *, state: str = "up", version: int | None = None,
             command: str = "gunicorn app:app", size: str = "standard-1x", started: datetime | None = None,
             changed: datetime | None = None) -> str:
    """A dyno `name` (type.N) of release `version` (the newest when None); its id."""
    kind, _, number = name.rpartition(".")
    with database.transaction() as session:
        app = session.scalar(select(App).where(App.name == app_name))
        query = select(Release).where(Release.app_id == app.id)
        query = query.where(Release.version == version) if version else query.order_by(Release.version.desc())
        release = session.scalars(query.limit(1)).first()
        dyno = Dyno(app_id=app.id, release_id=release.id, release_version=release.version, type=kind,
                    number=int(number), command=command, size=size, state=state,
                    backend_id=f"local-{uuid.uuid4().hex}", address=f"127.0.0.1:{40000 + int(number)}",
                    created_at=started or utcnow(), updated_at=changed or started or utcnow())
        session.add(dyno)
        session.flush()
        return dyno.id


def actions(database: Database, app_name: str) -> list[dict[str, Any]]:
    with database.transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == app_name))
        return [{"action": row.action, "type": row.type, "name": row.name, "user_id": row.user_id,
                 "done_at": row.done_at}
                for row in session.scalars(select(DynoAction).where(DynoAction.app_id == app_id)
                                           .order_by(DynoAction.created_at, DynoAction.id))]


def api_lines(database: Database, app_name: str) -> list[str]:
    """The app's `app[api]` lines, oldest first."""
    with database.transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == app_name))
        return [row.message for row in session.scalars(select(LogLine).where(
            LogLine.app_id == app_id, LogLine.source == "app", LogLine.process == "api").order_by(LogLine.id))]
