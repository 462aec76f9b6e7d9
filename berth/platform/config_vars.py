"""Config vars: encrypted at rest; every effective change is a release, made before answering."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, bindparam, select, type_coerce
from sqlalchemy.orm import Session

from berth import crypto
from berth.accounts import UUID_PATTERN, Account
from berth.db import PreparedStatement
from berth.errors import Conflict, InvalidParams, NotFound
from berth.platform import releases
from berth.platform.apps import APP_NOT_FOUND, visible_to
from berth.platform.models import App, ConfigVar

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_TOTAL_BYTES = 32 * 1024


def visible_config_select(caller_id: ColumnElement[str], *, by_id: bool) -> Select[Any]:
    """Rows (app id, var name, raw ciphertext) of the app whose id or name is the bind `ref`, if
    `caller_id` may see it; no row otherwise. The caller is an SQL expression, so that the API
    can take it from its admission in the same statement (one round trip on PostgreSQL)."""
    app_key = App.id if by_id else App.name
    # type_coerce: the raw ciphertext, decrypted by config_from_rows (prepared statements skip
    # result types).
    return (select(App.id, ConfigVar.name, type_coerce(ConfigVar.value, Text))
            .outerjoin(ConfigVar, ConfigVar.app_id == App.id)
            .where(app_key == bindparam("ref"), visible_to(caller_id)))


def visible_config_ref(app_ref: str) -> tuple[bool, dict[str, str]]:
    """(by_id, the `ref` parameter) of visible_config_select for an app's id or name."""
    by_id = bool(UUID_PATTERN.match(app_ref))
    return by_id, {"ref": app_ref.lower() if by_id else app_ref}


def config_from_rows(rows: list[tuple[Any, ...]]) -> dict[str, str]:
    """The decrypted config from visible_config_select's rows; none: the app is not found."""
    if not rows:
        raise NotFound(APP_NOT_FOUND, resource="app")
    decrypt = crypto.keyring().decrypt
    return {name: decrypt(value) for _app_id, name, value in rows if name is not None}


# Prepared once: this is the API's hottest read (every CLI command and deploy tool asks for it).
_VISIBLE_CONFIG = {by_id: PreparedStatement(visible_config_select(bindparam("caller_id"), by_id=by_id))
                   for by_id in (True, False)}


def read_visible_config(session: Session, caller_id: str, app_ref: str) -> dict[str, str]:
    """An app's config, if the caller may see the app, in one query.

    Runs on its own pooled connection in autocommit, as the request's reads do: for GET
    requests only, never inside a write transaction.
    """
    by_id, params = visible_config_ref(app_ref)
    return config_from_rows(_VISIBLE_CONFIG[by_id].run(session.get_bind(),
                                                       {**params, "caller_id": caller_id}))


def _normalise(changes: dict[str, Any]) -> dict[str, str | None]:
    problems = [repr(name) for name in changes if not NAME_PATTERN.match(name)]
    if problems:
        raise InvalidParams(f"Invalid config var name {', '.join(sorted(problems))}: names must match "
                            "^[A-Za-z_][A-Za-z0-9_]*$.")
    normalised: dict[str, str | None] = {}
    for name, value in changes.items():
        if value is None or isinstance(value, str):
            normalised[name] = value
        elif isinstance(value, bool):
            normalised[name] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            normalised[name] = str(value)  # Heroku coerces scalars to strings
        else:
            raise InvalidParams(f"Config var {name} must be a string or null.")
        if normalised[name] is not None and "\x00" in normalised[name]:  # type: ignore[operator]
            raise InvalidParams(f"Config var {name} must not contain NUL characters.")
    return normalised


def size_of(config: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in config.items())


def describe_change(set_names: list[str], removed: list[str]) -> str:
    parts = []
    if set_names:
        parts.append(f"Set {', '.join(set_names)}")
    if removed:
        parts.append(f"{'remove' if set_names else 'Remove'} {', '.join(removed)}")
    return " and ".join(parts) + " config vars"


def update_config(session: Session, app: App, user: Account, changes: dict[str, Any]) -> dict[str, str]:
    """Apply a user's partial map (`None` unsets). Validation happens before any write."""
    normalised = _normalise(changes)
    releases.lock_app(session, app)
    rows = {row.name: row for row in session.scalars(
        select(ConfigVar).where(ConfigVar.app_id == app.id))}
    owned = sorted(name for name in normalised if name in rows and rows[name].owner is not None)
    if owned:
        raise Conflict(f"{', '.join(owned)} {'is' if len(owned) == 1 else 'are'} set by an add-on "
                       "attachment and cannot be changed here; detach the add-on or change it "
                       "through its provider.")
    current = {name: row.value for name, row in rows.items()}
    updated = dict(current)
    for name, value in normalised.items():
        if value is None:
            updated.pop(name, None)
        else:
            updated[name] = value
    total = size_of(updated)
    if total > MAX_TOTAL_BYTES:
        raise InvalidParams(f"Config vars are limited to {MAX_TOTAL_BYTES // 1024} kB in total; this "
                            f"change would make them {total} bytes.")
    set_names = [n for n, v in normalised.items() if v is not None and current.get(n) != v]
    removed = [n for n, v in normalised.items() if v is None and n in current]
    if not set_names and not removed:
        return current
    for name in set_names:
        if name in rows:
            rows[name].value = updated[name]
        else:
            session.add(ConfigVar(app_id=app.id, name=name, value=updated[name]))
    for name in removed:
        session.delete(rows[name])
    session.flush()
    releases.create_release(session, app, user, describe_change(set_names, removed), config=updated,
                            app_locked=True)
    return updated


def owned_names(session: Session, app: App, owner: str) -> list[str]:
    return sorted(session.scalars(select(ConfigVar.name).where(ConfigVar.app_id == app.id,
                                                               ConfigVar.owner == owner)))


def owned_name_clashes(session: Session, app: App, names: list[str], owner: str) -> tuple[list[str], list[str]]:
    """Of `names`, those already set by the user, and those set by another owner."""
    rows = session.scalars(select(ConfigVar).where(ConfigVar.app_id == app.id,
                                                   ConfigVar.name.in_(names))).all()
    by_user = sorted(row.name for row in rows if row.owner is None)
    by_other = sorted(row.name for row in rows if row.owner not in (None, owner))
    return by_user, by_other


def set_owned_config(session: Session, app: App, owner: str, values: dict[str, str],
                     user: Account | None, description: str) -> dict[str, str]:
    """Make the vars `owner` injects into `app` exactly `values`, as one release.

    The caller has checked clashes (`owned_name_clashes`) and asked for confirmation: a
    user's var of the same name is taken over; another owner's is a conflict.
    """
    normalised = _normalise(values)
    releases.lock_app(session, app)
    rows = {row.name: row for row in session.scalars(
        select(ConfigVar).where(ConfigVar.app_id == app.id))}
    clashing = sorted(name for name in values if name in rows and rows[name].owner not in (None, owner))
    if clashing:
        raise Conflict(f"{', '.join(clashing)} already set by another add-on attachment on {app.name}.")
    updated = {name: row.value for name, row in rows.items() if row.owner != owner}
    updated.update({name: value for name, value in normalised.items() if value is not None})
    total = size_of(updated)
    if total > MAX_TOTAL_BYTES:
        raise InvalidParams(f"Config vars are limited to {MAX_TOTAL_BYTES // 1024} kB in total; this "
                            f"change would make them {total} bytes.")
    for name, row in rows.items():
        if row.owner == owner and name not in values:
            session.delete(row)
    for name, value in normalised.items():
        if name in rows:
            rows[name].value, rows[name].owner = value, owner  # type: ignore[assignment]
        else:
            session.add(ConfigVar(app_id=app.id, name=name, value=value, owner=owner))
    session.flush()
    releases.create_release(session, app, user, description, config=updated, app_locked=True)
    return updated
