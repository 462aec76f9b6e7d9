"""An app's formation: process type -> quantity and size, what the run core scales to.

The formation lists every process type of the current release's slug; a type without a row has
quantity 0 (rows are made when app.json's `formation` is applied, when code first goes live with a
`web` type, and when someone scales or resizes). A row's id is derived from the app and the type,
so a type keeps the same id whether or not it has a row yet. Rows of types the current release
lacks are kept (a rollback brings the type back at its old quantity) but not listed."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from berth.db import utcnow
from berth.errors import InvalidParams, NotFound
from berth.hooks import FORMATION_CHANGED, RELEASE_CREATED, RELEASE_CURRENT, Hooks, hooks_of
from berth.platform import dyno_sizes, releases
from berth.platform.app_manifest import ProcessFormation
from berth.platform.logs import store
from berth.platform.models import App, Formation, Release, ReleaseStatus, Slug
from berth.platform.one_off_dynos import RELEASE_TYPE

_ROW_NAMESPACE = uuid.UUID("5c0f0d4e-8f7a-4c55-b0b8-2f3e4a1d9c61")
_RELATIVE = re.compile(r"^[+-]\d{1,9}$")
_ABSOLUTE = re.compile(r"^\d{1,9}$")


def formation_id(app_id: str, kind: str) -> str:
    return str(uuid.uuid5(_ROW_NAMESPACE, f"{app_id}/{kind}"))


@dataclass(frozen=True)
class ProcessEntry:
    """One process type of the formation, as the API shows it."""

    id: str
    type: str
    quantity: int
    size: dyno_sizes.DynoSize
    command: str
    app: App
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Change:
    """One requested update: quantity as a client sent it (2, "2", "+1", "-1"), size by any name."""

    type: str
    quantity: int | str | None = None
    size: str | None = None


def formation_of(session: Session, app: App) -> dict[str, Formation]:
    return {row.type: row for row in session.scalars(select(Formation).where(Formation.app_id == app.id))}


def _current_release(session: Session, app: App) -> Release | None:
    return session.scalar(select(Release).where(Release.app_id == app.id, Release.status == ReleaseStatus.SUCCEEDED)
                          .order_by(Release.version.desc()).limit(1))


def process_types(session: Session, app: App) -> tuple[dict[str, str], datetime | None]:
    """The current release's process types (type -> command) and when that release was made. Not
    `release`: the release phase's command runs once per release as a one-off dyno, and is not
    scalable (runtime.md §3)."""
    release = _current_release(session, app)
    if release is None or release.slug_id is None:
        return {}, None
    slug = session.get(Slug, release.slug_id)
    commands = dict(slug.process_types or {}) if slug else {}
    commands.pop(RELEASE_TYPE, None)
    return commands, release.created_at


def list_formation(session: Session, app: App) -> list[ProcessEntry]:
    commands, released_at = process_types(session, app)
    rows = formation_of(session, app)
    since = released_at or app.created_at
    entries = []
    for kind in sorted(commands):
        row = rows.get(kind)
        entries.append(ProcessEntry(
            formation_id(app.id, kind), kind, row.quantity if row else 0,
            dyno_sizes.of_stored(row.size if row else None), str(commands[kind]), app,
            row.created_at if row else since, row.updated_at if row else since))
    return entries


def get_process(session: Session, app: App, ref: str) -> ProcessEntry:
    """By type or id."""
    for entry in list_formation(session, app):
        if ref in (entry.type, entry.id):
            return entry
    raise NotFound(f"Couldn't find that formation.{_not_scalable(ref)}", resource="formation")


def _not_scalable(kind: str) -> str:
    """Why a type is not in the formation, when it is the release phase's."""
    return (" The release process type is the release phase's command, run once by each release as a one-off "
            "dyno (release.N), and cannot be scaled." if kind == RELEASE_TYPE else "")


def _wanted_quantity(current: int, requested: int | str, kind: str) -> int:
    if isinstance(requested, bool) or not isinstance(requested, (int, str)):
        raise InvalidParams(f"Quantity of {kind} must be a whole number, such as 2, or a change such as +1 or -1.")
    if isinstance(requested, str):
        text = requested.strip()
        if _RELATIVE.match(text):
            return max(0, current + int(text))  # relative changes stop at zero, as Heroku's do
        if not _ABSOLUTE.match(text):
            raise InvalidParams(f"Quantity of {kind} must be a whole number, such as 2, or a change such "
                                f"as +1 or -1, not {requested!r}.")
        requested = int(text)
    if requested < 0:
        raise InvalidParams(f"Cannot scale {kind} to {requested}: a quantity is 0 or more.")
    return requested


def update(session: Session, app: App, email: str, changes: list[Change]) -> list[ProcessEntry]:
    """Applies the changes in order (all or none), logs them to the app's log stream as `app[api]`,
    announces FORMATION_CHANGED; the whole formation after the change. Makes no release."""
    releases.lock_app(session, app)  # two scalings of one app are serialised, so limits hold
    before = {entry.type: entry for entry in list_formation(session, app)}
    quantities = {kind: entry.quantity for kind, entry in before.items()}
    sizes = {kind: entry.size for kind, entry in before.items()}
    for change in changes:
        if change.type not in before:
            known = ", ".join(before) or "none (deploy code with a Procfile first)"
            raise NotFound(f"Couldn't find that process type ({change.type}). Process types of the current "
                           f"release: {known}.{_not_scalable(change.type)}", resource="formation")
        if change.size is not None:
            sizes[change.type] = dyno_sizes.resolve(change.size)
        if change.quantity is not None:
            quantities[change.type] = _wanted_quantity(quantities[change.type], change.quantity, change.type)
    _check_limits(quantities, sizes)
    touched = {change.type for change in changes}
    scaled = [kind for kind in sorted(touched) if quantities[kind] != before[kind].quantity]
    resized = [kind for kind in sorted(touched) if sizes[kind] != before[kind].size]
    _store(session, app, {kind: (quantities[kind], sizes[kind].key) for kind in touched})
    lines = []
    if scaled:
        lines.append("Scale to " + ", ".join(f"{kind}={quantities[kind]}" for kind in sorted(quantities)))
    if resized:
        lines.append("Resize " + ", ".join(f"{kind} to {sizes[kind].name}" for kind in resized))
    after = list_formation(session, app)
    if lines:
        store.append(session, app.id, [store.Entry("app", "api", f"{line} by {email}") for line in lines])
        hooks_of(session).fire(FORMATION_CHANGED, session=session, app_id=app.id, formation=after)
    return after


def _check_limits(quantities: Mapping[str, int], sizes: Mapping[str, dyno_sizes.DynoSize]) -> None:
    for kind, quantity in quantities.items():
        size = sizes[kind]
        if quantity > size.max_per_type:
            raise InvalidParams(f"Cannot update to more than {size.max_per_type} {size.name} size dynos per "
                                f"process type ({kind}={quantity}). Choose a smaller quantity or another size.")
    total = sum(quantities.values())
    if total > dyno_sizes.MAX_DYNOS_PER_APP:
        raise InvalidParams(f"Cannot update to more than {dyno_sizes.MAX_DYNOS_PER_APP} dynos per app "
                            f"(this change asks for {total}). Scale other process types down first.")


def _store(session: Session, app: App, wanted: Mapping[str, tuple[int, str]]) -> None:
    rows = formation_of(session, app)
    now = utcnow()
    for kind, (quantity, size) in wanted.items():
        row = rows.get(kind)
        if row is None:
            session.add(Formation(id=formation_id(app.id, kind), app_id=app.id, type=kind, quantity=quantity,
                                  size=size))
        elif (row.quantity, row.size) != (quantity, size):
            row.quantity, row.size, row.updated_at = quantity, size, now
    session.flush()


def set_missing(session: Session, app: App, wanted: Mapping[str, ProcessFormation]) -> list[str]:
    """Record the process types the app has no formation for yet; the types recorded."""
    present = formation_of(session, app)
    added = [kind for kind in wanted if kind not in present]
    session.add_all(Formation(id=formation_id(app.id, kind), app_id=app.id, type=kind,
                              quantity=wanted[kind].quantity, size=wanted[kind].size)
                    for kind in added)
    session.flush()
    return added


def remove(session: Session, app: App, types: list[str]) -> None:
    if types:
        session.execute(delete(Formation).where(Formation.app_id == app.id, Formation.type.in_(types)))
        session.flush()


def start_web_on_first_code(session: Session, app_id: str, slug_id: str | None) -> None:
    """Code with a `web` process went live and the app has no web row yet: web=1 (Heroku's first
    deploy). A row already there (app.json's formation, or a user's scaling) is left alone."""
    if slug_id is None:
        return
    slug = session.get(Slug, slug_id)
    app = session.get(App, app_id)
    if slug is None or app is None or "web" not in (slug.process_types or {}):
        return
    set_missing(session, app, {"web": ProcessFormation(1, None)})


def register_defaults(hooks: Hooks) -> None:
    """Wired by every process that cuts or completes releases (berth.wire_hooks)."""
    def on_created(session: Session, releases: list[Any]) -> None:
        for release in releases:
            if release.status == ReleaseStatus.SUCCEEDED:
                start_web_on_first_code(session, release.app_id, release.slug_id)

    def on_current(session: Session, release: Any) -> None:
        start_web_on_first_code(session, release.app_id, release.slug_id)

    hooks.register(RELEASE_CREATED, on_created)
    hooks.register(RELEASE_CURRENT, on_current)
