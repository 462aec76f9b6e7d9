"""Config vars: encrypted at rest; every effective change is a release, made before answering."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy import ColumnElement, Select, Text, bindparam, delete, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from berth import crypto
from berth.accounts import UUID_PATTERN, Account
from berth.db import (EncryptedText, PreparedByCount, PreparedStatement, json_list, json_object_agg, json_rows,
                      loaded_json, new_id, utcnow)
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


def var_owners(app_id: Any) -> Any:
    """SQL scalar subquery: the app's config var names, each with its owner (None: the user's),
    as one JSON object; `app_id` may be a column of the enclosing statement."""
    return (select(json_object_agg(ConfigVar.name, ConfigVar.owner))
            .where(ConfigVar.app_id == app_id).scalar_subquery())


def owned_name_clashes(owners: Mapping[str, str | None], names: list[str],
                       owner: str) -> tuple[list[str], list[str]]:
    """Of `names`, those already set by the user, and those set by another owner (`owners`:
    what `var_owners` read)."""
    present = [name for name in names if name in owners]
    by_user = sorted(name for name in present if owners[name] is None)
    by_other = sorted(name for name in present if owners[name] not in (None, owner))
    return by_user, by_other


@dataclass(frozen=True)
class OwnedConfig:
    """The vars `owner` (an opaque id: an add-on attachment's) injects into an app, as one release."""

    app_id: str
    owner: str
    values: dict[str, str]
    description: str
    user_id: str | None = None


# Each app's vars as [id, name, ciphertext, owner] rows, read with the stamp that precedes a release.
_APP_CONFIG = select(json_rows(json_list(ConfigVar.id, ConfigVar.name, type_coerce(ConfigVar.value, Text),
                                         ConfigVar.owner))).where(ConfigVar.app_id == App.id).scalar_subquery()
_STAMP_AND_READ = PreparedByCount(lambda count: releases.stamp_apps(count, _APP_CONFIG))


def _upsert_vars(dialect: str) -> PreparedByCount:
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def build(count: int) -> Any:
        rows = [{"id": bindparam(f"id_{i}"), "app_id": bindparam(f"app_id_{i}"), "name": bindparam(f"name_{i}"),
                 "value": bindparam(f"value_{i}", type_=EncryptedText()), "owner": bindparam(f"owner_{i}")}
                for i in range(count)]
        statement = insert_for(ConfigVar.__table__).values(rows)
        return statement.on_conflict_do_update(
            index_elements=["app_id", "name"],
            set_={"value": statement.excluded.value, "owner": statement.excluded.owner})
    return PreparedByCount(build)


_UPSERT_VARS = {dialect: _upsert_vars(dialect) for dialect in ("sqlite", "postgresql")}
_DELETE_VARS = PreparedByCount(lambda count: delete(ConfigVar).where(
    ConfigVar.id.in_([bindparam(f"id_{i}") for i in range(count)])))


def set_owned_configs(session: Session, changes: list[OwnedConfig]) -> None:
    """Make the vars each owner injects into its app exactly its `values`, one release per change,
    in four statements whatever their number: stamp the apps and read their config, delete and
    upsert vars, insert the releases. On PostgreSQL the caller holds the apps' lock (`lock_app`,
    or `releases.locking_apps` in an earlier statement) from before this call.

    The caller has checked clashes (`owned_name_clashes`) and asked for confirmation: a user's
    var of the same name is taken over; another owner's is a conflict.
    """
    if not changes:
        return
    normalised = [_normalise(change.values) for change in changes]
    app_ids = sorted({change.app_id for change in changes})
    now = utcnow()
    stamped = _STAMP_AND_READ[len(app_ids)].run_in(
        session, {"now": now, **{f"app_{i}": app_id for i, app_id in enumerate(app_ids)}})
    decrypt = crypto.keyring().decrypt
    apps = {app_id: (name, last or 0, {row[1]: (row[0], decrypt(row[2]), row[3]) for row in loaded_json(rows) or ()})
            for app_id, name, last, rows in stamped}
    upserts: dict[tuple[str, str], tuple[str, str]] = {}
    deletions: list[str] = []
    new_releases: list[releases.NewRelease] = []
    for change, values in zip(changes, normalised):
        app_name, last, rows = apps[change.app_id]
        clashing = sorted(name for name in values if name in rows and rows[name][2] not in (None, change.owner))
        if clashing:
            raise Conflict(f"{', '.join(clashing)} already set by another add-on attachment on {app_name}.")
        for name, (var_id, _value, owner) in list(rows.items()):
            if owner == change.owner and values.get(name) is None:
                deletions.append(var_id)
                del rows[name]
        for name, value in values.items():
            if value is not None and rows.get(name, (None, None, None))[1:] != (value, change.owner):
                upserts[(change.app_id, name)] = (value, change.owner)
                rows[name] = (rows.get(name, (new_id(),))[0], value, change.owner)
        updated = {name: value for name, (_id, value, _owner) in rows.items()}
        total = size_of(updated)
        if total > MAX_TOTAL_BYTES:
            raise InvalidParams(f"Config vars are limited to {MAX_TOTAL_BYTES // 1024} kB in total; this "
                                f"change would make them {total} bytes.")
        apps[change.app_id] = (app_name, last + 1, rows)
        new_releases.append(releases.NewRelease(change.app_id, last + 1, change.description, updated,
                                                change.user_id, runs_release_phase=False))
    if deletions:
        _DELETE_VARS[len(deletions)].run_in(session, {f"id_{i}": var_id for i, var_id in enumerate(deletions)})
    if upserts:
        params: dict[str, Any] = {}
        for i, ((app_id, name), (value, owner)) in enumerate(upserts.items()):
            params.update({f"id_{i}": new_id(), f"app_id_{i}": app_id, f"name_{i}": name,
                           f"value_{i}": value, f"owner_{i}": owner})
        _UPSERT_VARS[session.get_bind().dialect.name][len(upserts)].run_in(session, params)
    releases.create_releases(session, new_releases, now)


def set_owned_config(session: Session, app: App, owner: str, values: dict[str, str],
                     user: Account | None, description: str) -> None:
    """`set_owned_configs` for one owner on one app, taking the app's lock first."""
    releases.lock_app(session, app)
    session.flush()  # what the session holds must reach the database before statements read it
    set_owned_configs(session, [OwnedConfig(app.id, owner, values, description, user.id if user else None)])
    session.expire(app, ["released_at", "updated_at"])  # stamped by the statement, not the ORM
