"""Berth's admin sessions on a Postgres server: settings pinned, identity checked.

A tenant owns its database, so it can attach settings to it (`ALTER DATABASE … SET search_path =
its_schema, pg_catalog`, `role`, `default_transaction_read_only`, `statement_timeout`…) that every
session there starts with, a superuser's too. Such a setting could make an admin session run the
tenant's operators and functions as superuser, act as the tenant, or fail every write, and so
switch storage enforcement off. Options sent at login outrank database and role settings, so each
admin session pins every setting Berth relies on there, and `verified` refuses one that is not
what it asked for. Statements run in a tenant's database name catalog objects with `pg_catalog.`
as well; search_path is pinned to pg_catalog (then pg_temp, never searched first) regardless.
"""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

LOCK_TIMEOUT = "10s"  # restricting waits this long for a tenant's open transaction, then fails

PINNED = {
    "search_path": "pg_catalog,pg_temp",
    "role": "none",                                  # the login role, not one the database names
    "default_transaction_read_only": "off",
    "default_transaction_isolation": "read\\ committed",
    "default_transaction_deferrable": "off",
    "statement_timeout": "0",
    "lock_timeout": LOCK_TIMEOUT,
    "idle_in_transaction_session_timeout": "0",
    "local_preload_libraries": "",
    "default_tablespace": "",
    "temp_tablespaces": "",
}


class UnsafeSession(psycopg.OperationalError):
    """An admin session is not the one Berth asked for (an override did not take): treated as a
    server that cannot be reached, so nothing runs in it."""


def conninfo(admin_url: str, database: str | None = None) -> str:
    """The libpq conninfo of an admin session to `admin_url` (or its `database`), settings pinned."""
    options = " ".join(f"-c {name}={value}" for name, value in PINNED.items())
    overrides: dict[str, Any] = {"options": options}
    if database:
        overrides["dbname"] = database
    return make_conninfo(admin_url.replace("postgresql+psycopg://", "postgresql://", 1), **overrides)


def verified(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """`conn`, after checking it acts as its login role, read-write, on pg_catalog only."""
    row = conn.execute("SELECT pg_catalog.current_user() = pg_catalog.session_user(), "
                       "pg_catalog.current_setting('search_path'), "
                       "pg_catalog.current_setting('transaction_read_only')").fetchone()
    if row != (True, PINNED["search_path"], "off"):
        conn.close()
        raise UnsafeSession(f"an admin session did not get its pinned settings: {row!r}")
    if conn.info.server_version >= 170000:  # a setting older servers reject at login
        conn.execute("SET transaction_timeout = 0")
    return conn


__all__ = ["LOCK_TIMEOUT", "PINNED", "UnsafeSession", "conninfo", "verified"]
