"""What else a restricted database's locker role must give up (§6.2 hands it the tenant's objects).

REASSIGN OWNED makes the locker own everything the tenant owned, and whatever runs as an object's
owner then runs as the locker, which may write: SECURITY DEFINER routines (called directly, or as
trigger functions, which fire whatever the caller's privileges), rules (their actions are checked
against the table owner), and any GRANT such code issues (an owner may grant itself anything). So
while restricted:
- every SECURITY DEFINER routine the locker owns runs as SECURITY INVOKER, i.e. as the tenant,
  which may not write; their oids are recorded so that restoring makes them definers again;
- the locker loses INSERT and UPDATE on its own tables and views, so rules cannot write either;
- nobody may create large objects (any role may, by default, outside every table's privileges);
  only a superuser may change that (a CREATEROLE broker leaves it, and says so in the log).
Every statement runs in an admin session to the tenant's database (`privileged.py`), names
catalog objects `pg_catalog.…`, and may be repeated after a crash part-way.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

LARGE_OBJECT_MAKERS = ("pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid), "
                       "pg_catalog.lo_from_bytea(oid, bytea)")


def definers(tenant_db: psycopg.Connection[Any], locker: str) -> list[int]:
    """Oids of the SECURITY DEFINER routines `locker` owns."""
    rows = tenant_db.execute(
        "SELECT p.oid FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_roles AS r ON r.oid = p.proowner "
        "WHERE r.rolname = %s AND p.prosecdef ORDER BY p.oid", [locker]).fetchall()
    return [int(row[0]) for row in rows]


def seal(tenant_db: psycopg.Connection[Any], locker: str, routines: Iterable[int], schemas: list[str], *,
         superuser: bool) -> None:
    _set_security(tenant_db, locker, routines, "INVOKER")
    for schema in schemas:
        tenant_db.execute(sql.SQL("REVOKE INSERT, UPDATE ON ALL TABLES IN SCHEMA {} FROM {}").format(
            sql.Identifier(schema), sql.Identifier(locker)))
    if superuser:
        tenant_db.execute(f"REVOKE EXECUTE ON FUNCTION {LARGE_OBJECT_MAKERS} FROM PUBLIC")
    else:
        log.warning("restricted database %s: its tenant can still create large objects (the admin role "
                    "is not superuser)", tenant_db.info.dbname)


def unseal(tenant_db: psycopg.Connection[Any], locker: str, routines: Iterable[int], schemas: list[str], *,
           superuser: bool) -> None:
    """Undo `seal` (before the locker hands everything back to the tenant)."""
    if superuser:
        tenant_db.execute(f"GRANT EXECUTE ON FUNCTION {LARGE_OBJECT_MAKERS} TO PUBLIC")
    for schema in schemas:
        tenant_db.execute(sql.SQL("GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA {} TO {}").format(
            sql.Identifier(schema), sql.Identifier(locker)))
    _set_security(tenant_db, locker, routines, "DEFINER")


def _set_security(tenant_db: psycopg.Connection[Any], locker: str, routines: Iterable[int], mode: str) -> None:
    """ALTER ROUTINE … SECURITY `mode` for each of `routines` the locker still owns (a DO block:
    regprocedure prints each one's name qualified and quoted, search_path being pg_catalog)."""
    oids = sorted({int(oid) for oid in routines})
    if not oids:
        return
    body = sql.SQL(
        "DECLARE routine pg_catalog.regprocedure; BEGIN "
        "FOR routine IN SELECT p.oid FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_roles AS r "
        "ON r.oid = p.proowner WHERE p.oid = ANY ({oids}::pg_catalog.oid[]) AND r.rolname = {locker} LOOP "
        "EXECUTE pg_catalog.format('ALTER ROUTINE %s SECURITY {mode}', routine); END LOOP; END").format(
            oids=sql.Literal("{" + ",".join(str(oid) for oid in oids) + "}"), locker=sql.Literal(locker),
            mode=sql.SQL(mode))
    tenant_db.execute(sql.SQL("DO {}").format(sql.Literal(body.as_string(tenant_db))))


__all__ = ["definers", "seal", "unseal"]
