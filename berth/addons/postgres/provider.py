"""The first-party Postgres add-on (`postgresql`): a role and a database per add-on on a shared
PostgreSQL server (`specs/backends.md` §6), served as a partner by `partner_api.server`.

Servers are BERTH_POSTGRES_SERVERS (admin URLs), or else the embedded cluster (`embedded.py`). A
resource's `location` is its server's `host:port` (never the admin URL: no secrets in that column);
its encrypted `details` hold the names (`db_<r>`, `u_<r>`, locker `l_<r>`), the password, the host
and port tenants connect to, and whether it is restricted for being over its storage limit.

Dedicated plans (`standard-0`) get a cluster of their own on this host (`dedicated.py`), whether or
not BERTH_POSTGRES_SERVERS is set; their `location` is `dedicated:<uuid>`, their port is chosen
when the record is written. Inside it the tenant gets the same role and database as on a shared
server, so everything else (enforcement, rotation, backups) works alike. Deprovisioning one stops
the cluster and deletes its files; moving between the shared and dedicated tiers is refused.

Every change follows the same order: record it (committed), then do it on the server idempotently,
then mark it done; so a repeated call finishes what a crashed one began. Work on one resource is
serialised across processes with a session advisory lock on its server (`hashtext('berth-postgresql:'
|| uuid)`), so two calls for the same uuid never race each other's DDL.

Over-capacity enforcement (`enforce_storage_limits`, §1.5 and §6.2): a database larger than its plan
allows is handed to its own locker role (REASSIGN OWNED), and its tenant keeps only CONNECT, USAGE and
SELECT/DELETE/TRUNCATE and one connection; INSERT and CREATE then fail with 42501. Once it is back
under the limit (or the plan is upgraded) ownership returns to the tenant and the locker is dropped.
Every admin session pins the settings it relies on and names catalog objects `pg_catalog.…`
(`privileged.py`): a tenant's database settings (search_path, role, read-only…) never reach it.
Code that runs as its owner (SECURITY DEFINER routines, trigger functions, rules) would then run
as the locker; `lockdown.py` takes that away while restricted, and gives it back on restoring.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import select
import string
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from sqlalchemy.exc import IntegrityError

from berth.addons import notify, resources
from berth.addons.models import ACTIVE, CREATING, DELETED, DELETING, ProviderResource
from berth.addons.postgres import actions, backups, dedicated, embedded, lockdown, privileged
from berth.addons.postgres.cluster import ClusterError
from berth.addons.postgres.plans import PLANS, Plan
from berth.broker.partner_api.provider import ActionResult, ProviderError, Provisioned, ProvisionRequest
from berth.config import Settings
from berth.db import Database
from berth.supervise.ports import LOOPBACK

log = logging.getLogger(__name__)

SERVICE = "postgresql"
CONFIG_VAR = "DATABASE_URL"
PASSWORD_LENGTH = 65  # Heroku's: 65 alphanumeric characters
PASSWORD_ALPHABET = string.ascii_letters + string.digits
NAME_ALPHABET = string.ascii_lowercase + string.digits
NAME_LENGTH = 16
UNAVAILABLE = "The Postgres server is not available at the moment; try again later."


@dataclass(frozen=True)
class StorageChange:
    """A resource `enforce_storage_limits` restricted (restricted=True) or restored (False), or
    whose connections it blocked because restricting it failed (blocked=True)."""
    uuid: str
    plan: str
    size_bytes: int
    limit_bytes: int
    restricted: bool
    blocked: bool = False


@dataclass(frozen=True)
class _Resource:
    uuid: str
    plan: str
    state: str
    location: str
    details: dict[str, Any]

    @classmethod
    def of(cls, row: ProviderResource) -> "_Resource":
        return cls(row.id, row.plan, row.state, row.location, resources.details(row))

    @property
    def user(self) -> str:
        return str(self.details["user"])

    @property
    def database(self) -> str:
        return str(self.details["database"])

    @property
    def locker(self) -> str:
        return str(self.details["locker"])

    @property
    def grants(self) -> dict[str, dict[str, str]]:
        """grant id -> the login role (`b_<r>`) and password of that grant (an OSB binding)."""
        return dict(self.details.get("grants") or {})

    @property
    def login_roles(self) -> list[str]:
        """The add-on's own role and every grant's: enforcement limits, blocks and restores them all."""
        return [self.user, *sorted(grant["user"] for grant in self.grants.values())]

    @property
    def restricted(self) -> bool:
        return bool(self.details.get("restricted"))

    @property
    def blocked(self) -> bool:
        return bool(self.details.get("blocked"))

    def config(self, grant: Mapping[str, str] | None = None) -> dict[str, str]:
        """DATABASE_URL with the add-on's own credentials, or with those of `grant`."""
        d = self.details
        user, password = (grant["user"], grant["password"]) if grant else (self.user, d["password"])
        host = f"[{d['host']}]" if ":" in str(d["host"]) else d["host"]
        return {CONFIG_VAR: f"postgres://{quote(user, safe='')}:{quote(password, safe='')}"
                            f"@{host}:{d['port']}/{quote(self.database, safe='')}"}


def server_location(admin_url: str) -> str:
    """`host:port` of an admin URL: where a resource lives, without the URL's credentials."""
    parts = urlsplit(admin_url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _q(template: str, *identifiers: str) -> sql.Composed:
    return sql.SQL(template).format(*(sql.Identifier(name) for name in identifiers))


def _exists(conn: psycopg.Connection[Any], query: str, value: str) -> bool:
    return conn.execute(query, [value]).fetchone() is not None


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return _exists(conn, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", role)


def _database_exists(conn: psycopg.Connection[Any], database: str) -> bool:
    return _exists(conn, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", database)


def _is_superuser(conn: psycopg.Connection[Any]) -> bool:
    # The server reports it at login (a GUC_REPORT setting): no round trip.
    reported = conn.info.parameter_status("is_superuser")
    if reported is not None:
        return reported == "on"
    row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _become_member(conn: psycopg.Connection[Any], role: str) -> None:
    """A non-superuser broker (CREATEROLE, CREATEDB) must be a member of a role to create a
    database owned by it, reassign its objects or drop what it owns."""
    if not _is_superuser(conn):
        conn.execute(_q("GRANT {} TO CURRENT_USER", role))


def _schemas(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                        "AND nspname <> 'information_schema' ORDER BY nspname").fetchall()
    return [row[0] for row in rows]


def _do(conn: psycopg.Connection[Any], body: sql.Composable) -> sql.Composed:
    """A `DO` block running `body` (PL/pgSQL statements), the body quoted as a string literal."""
    return sql.SQL("DO {}").format(sql.Literal(f"BEGIN {body.as_string(conn)} END"))


def _drop_role(role: str, *, member_first: bool) -> sql.Composed:
    """PL/pgSQL: drop `role` if it exists, with its grants left in the current database. A
    non-superuser broker must first be a member of it (see `_become_member`)."""
    template = ("IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {name}) THEN "
                + ("GRANT {role} TO CURRENT_USER; " if member_first else "")
                + "DROP OWNED BY {role}; DROP ROLE {role}; END IF;")
    return sql.SQL(template).format(name=sql.Literal(role), role=sql.Identifier(role))


def _limit_connections(conn: psycopg.Connection[Any], roles: list[str], limit: int) -> None:
    for role in roles:
        conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(sql.Identifier(role), sql.Literal(limit)))


def _reason(error: Exception) -> str:
    """What a failure says, for the log (never a connection string or password)."""
    if isinstance(error, psycopg.Error) and error.diag.message_primary:
        return f"{error.sqlstate or ''} {error.diag.message_primary}".strip()
    return str(error) if isinstance(error, ProviderError) else type(error).__name__


def _terminate(conn: psycopg.Connection[Any], *, user: str | None = None, database: str | None = None) -> None:
    column, value = ("usename", user) if user is not None else ("datname", database)
    conn.execute(f"SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                 f"WHERE {column} = %s "
                 "AND pid <> pg_catalog.pg_backend_pid()", [value])


class _Borrowed:
    """A pooled admin connection, used like a psycopg connection (`with … as conn`). Giving it back
    releases any advisory lock it still holds; one that failed is closed instead."""

    def __init__(self, pool: "_AdminPool", conninfo: str, connection: psycopg.Connection[Any]) -> None:
        self._pool, self._conninfo, self._connection = pool, conninfo, connection
        self._unlocked = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __enter__(self) -> "_Borrowed":
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._pool.give_back(self._conninfo, self._connection, broken=kind is not None, unlocked=self._unlocked)

    def unlocked(self) -> None:
        """The caller ran `pg_advisory_unlock_all()` last: giving it back needs no round trip."""
        self._unlocked = True


class _AdminPool:
    IDLE_PER_SERVER = 4

    def __init__(self) -> None:
        self._idle: dict[str, list[psycopg.Connection[Any]]] = {}
        self._lock = threading.Lock()

    def borrow(self, conninfo: str, timeout: int) -> _Borrowed:
        with self._lock:
            idle = self._idle.setdefault(conninfo, [])
            connection = idle.pop() if idle else None
        if connection is not None and not _quiet(connection):  # the server may have restarted since
            try:
                connection.execute("SELECT 1")
            except psycopg.Error:
                connection.close()
                connection = None
        if connection is None:
            connection = privileged.verified(psycopg.connect(conninfo, autocommit=True, connect_timeout=timeout))
        return _Borrowed(self, conninfo, connection)

    def give_back(self, conninfo: str, connection: psycopg.Connection[Any], *, broken: bool,
                  unlocked: bool = False) -> None:
        if not broken and not connection.closed and not unlocked:
            try:
                connection.execute("SELECT pg_catalog.pg_advisory_unlock_all()")
            except psycopg.Error:
                broken = True
        with self._lock:
            idle = self._idle.setdefault(conninfo, [])
            if not broken and not connection.closed and len(idle) < self.IDLE_PER_SERVER:
                idle.append(connection)
                return
        connection.close()

    def discard(self, conninfo: str) -> None:
        """Close the idle connections to a server that is going away (a dedicated cluster)."""
        with self._lock:
            idle = self._idle.pop(conninfo, [])
        for connection in idle:
            connection.close()


def _quiet(connection: psycopg.Connection[Any]) -> bool:
    """An idle pooled connection with nothing to read: its backend has not gone away. A backend
    ended by a restart or pg_terminate_backend sends an error and closes the socket, making it
    readable; then (or when unsure) the caller checks with a round trip instead."""
    if connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


_ADMIN_POOL = _AdminPool()


class PostgresProvider:
    """The `Provider` for `postgresql`. `limits_bytes` overrides plans' storage limits (tests)."""

    def __init__(self, database: Database, settings: Settings, *,
                 limits_bytes: Mapping[str, int] | None = None, connect_timeout: int = 10) -> None:
        self.database, self.settings = database, settings
        self.limits_bytes = dict(limits_bytes or {})
        self.connect_timeout = connect_timeout
        self._embedded_url: str | None = None

    # -- the Provider protocol --------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "id": SERVICE,
            "name": "Heroku-style Postgres",
            "description": ("Reliable PostgreSQL databases as a service: each add-on is its own database "
                            "and owner role on a shared server (Essential plans) or on a server of its "
                            "own (Standard), reached through DATABASE_URL."),
            "categories": ["Data Stores"],
            "api": {"version": "3", "config_vars_prefix": "DATABASE", "config_vars": [CONFIG_VAR],
                    "regions": ["*"], "requires": ["many_per_app", "log_input", "attachable", "grants"]},
            "plans": [plan.manifest_entry() for plan in PLANS.values()],
        }

    def provision(self, request: ProvisionRequest) -> Provisioned:
        plan = self._plan(request.plan)
        if request.options:
            raise ProviderError(f"Unknown options: {', '.join(sorted(request.options))}. "
                                "The postgresql add-on takes no options.", 422)
        resource = self._lookup(request.uuid) or self._record(request.uuid, plan)
        if resource.state in (DELETING, DELETED):
            raise ProviderError("This add-on has been deprovisioned; provision a new one.", 422)
        if resource.state == CREATING:
            with self._connect(resource.location) as conn:
                self._lock(conn, resource.uuid)
                self._create(conn, resource)
            resource = self._update(resource.uuid, state=ACTIVE, only_from=(CREATING, ACTIVE))
        if request.log_input_url and resource.details.get("log_input_url") != request.log_input_url:
            resource = self._update(resource.uuid, log_input_url=request.log_input_url)  # for notices
        return Provisioned(id=resource.uuid, config=resource.config(),
                           message="Your PostgreSQL database is ready.")

    def change_plan(self, uuid: str, plan: str) -> dict[str, str] | None:
        new = self._plan(plan)
        resource = self._lookup(uuid)
        if resource is None or resource.state in (DELETING, DELETED):
            raise ProviderError("No such Postgres database.", 404)
        if resource.state == CREATING:
            raise ProviderError("The database is still being created; try again when it is ready.", 422)
        if resource.plan == new.name:
            return None
        current = PLANS.get(resource.plan)
        if current is not None and current.dedicated != new.dedicated:
            raise ProviderError(
                f"{resource.plan} is on a {current.tier} server and {new.name} on a {new.tier} one: the "
                "plan cannot be changed in place. Create a new add-on with the plan you want, copy the "
                "data with `berth pg:backups:capture` and `berth pg:backups:restore`, then remove this one.",
                422)
        with self._connect(resource.location) as conn:
            self._lock(conn, uuid)
            resource = self._fresh(uuid)
            size = self._size(conn, resource)
            if size > self._limit(new.name):
                raise ProviderError(
                    f"The database holds {size / 1024 ** 2:.0f} MB, more than {new.name} allows "
                    f"({self._limit(new.name) / 1024 ** 2:.0f} MB); delete data first.", 422)
            if not resource.restricted:  # restricted: one connection until enforcement restores it
                self._backend(lambda: _limit_connections(conn, resource.login_roles, new.connections))
            self._update(uuid, plan=new.name)
            if resource.restricted or resource.blocked:  # an upgrade is the way out of either
                self._enforce_locked(conn, uuid)
        return None

    def deprovision(self, uuid: str) -> bool:
        resource = self._begin_deleting(uuid)
        if resource is None:
            return False
        if dedicated.is_dedicated(resource.location):
            self._remove_dedicated(resource)
        else:
            with self._connect(resource.location) as conn:
                self._drop(conn, resource)  # takes and releases the uuid's lock
        self._update(uuid, state=DELETED)
        backups.delete_all(self.settings, uuid)  # the backups go with the database, as on Heroku
        return True

    # -- beyond the protocol ----------------------------------------------------------------------

    def action(self, uuid: str, name: str, params: dict[str, Any]) -> ActionResult:
        return actions.run(self, uuid, name, params)

    def blueprint(self) -> Any:
        return actions.download_blueprint(self)

    def active(self, uuid: str) -> _Resource:
        resource = self._lookup(uuid)
        if resource is None or resource.state != ACTIVE:
            raise ProviderError("No such Postgres database.", 404)
        return resource

    def storage_limit(self, plan: str) -> int:
        return self._limit(plan)

    def connection_limit(self, plan: str) -> int:
        return self._plan(plan).connections

    def notify_storage_changes(self, changes: list[StorageChange]) -> None:
        """Tell each app's owners, in its log stream, that writes were revoked or restored."""
        for change in changes:
            resource = self._lookup(change.uuid)
            if resource is None:
                continue
            used, allowed = change.size_bytes / 1024 ** 2, change.limit_bytes / 1024 ** 2
            if change.blocked:
                message = (f"Error: database over its {change.plan} storage limit ({used:.0f} of {allowed:.0f} MB) "
                           "and its storage limit could not be enforced, so its connections are blocked. The operator "
                           "can see why in the Berth backends log; connections return, read-only, once it is "
                           "restricted, or at once on an upgrade to a plan it fits in.")
            elif change.restricted:
                message = (f"Error: database over its {change.plan} storage limit ({used:.0f} of {allowed:.0f} MB): "
                           "write access revoked until it is back under the limit or the plan is upgraded.")
            else:
                message = (f"Database back under its {change.plan} storage limit ({used:.0f} of {allowed:.0f} MB): "
                           "write access restored.")
            notify.post_notice(resource.details.get("log_input_url"), "postgresql", message,
                               user_agent="berth-postgresql")

    def rotate_credentials(self, uuid: str) -> dict[str, str]:
        """A new password for the add-on's role; its open sessions are ended (Heroku's default
        credential rotation resets connections). Returns the new config."""
        resource = self._lookup(uuid)
        if resource is None or resource.state != ACTIVE:
            raise ProviderError("No such Postgres database.", 404)
        password = _random(PASSWORD_ALPHABET, PASSWORD_LENGTH)
        with self._connect(resource.location) as conn:
            self._lock(conn, uuid)
            resource = self._update(uuid, password=password)  # recorded first, as always
            user = resource.user

            def run() -> None:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user),
                                                                          sql.Literal(password)))
                _terminate(conn, user=user)

            self._backend(run)
        return resource.config()

    def grant(self, uuid: str, grant_id: str) -> dict[str, str]:
        """DATABASE_URL with a login role of the grant's own (an OSB binding): a member of the
        add-on's role, so it has exactly its rights, restricted or blocked with it (`login_roles`).
        Recorded before it is made, under the uuid's lock; repeating the call gives the same URL.
        A bind waits on this call: two round trips to the server (the lock; the role made,
        committed and the lock released) and two reads of the record (its location; then, locked,
        the grant looked up and, new, recorded in the same transaction)."""
        location = self.active(uuid).location
        with self._connect(location) as conn:
            self._lock(conn, uuid)
            resource, entry = self._record_grant(uuid, grant_id)
            self._backend(lambda: self._make_grant_role(conn, resource, entry["user"], entry["password"]))
        return resource.config(entry)

    def revoke(self, uuid: str, grant_id: str) -> bool:
        """The grant's role may no longer log in, its sessions end, what it owns in the database
        goes to the add-on's role (the locker's while restricted), and the role is dropped."""
        resource = self._lookup(uuid)
        if resource is None or resource.state != ACTIVE or grant_id not in resource.grants:
            return False  # none, or deprovisioned: its role went with the database
        with self._connect(resource.location) as conn:
            self._lock(conn, uuid)
            resource = self._fresh(uuid)
            entry = resource.grants.get(grant_id)
            if resource.state != ACTIVE or entry is None:
                return False
            current = resource
            self._backend(lambda: self._drop_grant_role(conn, current, entry["user"]))
            self._update(uuid, grants={key: value for key, value in resource.grants.items() if key != grant_id})
        return True

    def enforce_storage_limits(self) -> list[StorageChange]:
        """Restrict every active database over its plan's storage limit, restore every restricted
        one back under it; what changed, for the caller to tell the owners. A server that cannot be
        reached is skipped (logged) and looked at again on the next call."""
        with self.database.session(write=False) as session:
            active = [_Resource.of(row) for row in resources.live(session, SERVICE) if row.state == ACTIVE]
        changes: list[StorageChange] = []
        for location in sorted({resource.location for resource in active}):
            try:
                conn = self._connect(location)
            except ProviderError:
                log.warning("storage enforcement: Postgres server %s unreachable; skipped", location)
                continue
            with conn:
                for resource in (r for r in active if r.location == location):
                    try:
                        self._lock(conn, resource.uuid)
                        change = self._enforce_locked(conn, resource.uuid)
                    except (psycopg.Error, ProviderError):
                        log.exception("storage enforcement failed for %s; trying again later", resource.uuid)
                        continue
                    finally:
                        self._unlock(conn, resource.uuid)
                    if change is not None:
                        changes.append(change)
        return changes

    def storage_used(self, uuid: str) -> int:
        """`pg_database_size` of the add-on's database, in bytes."""
        resource = self._lookup(uuid)
        if resource is None or resource.state != ACTIVE:
            raise ProviderError("No such Postgres database.", 404)
        with self._connect(resource.location) as conn:
            return self._size(conn, resource)

    # -- records ----------------------------------------------------------------------------------

    def _plan(self, name: str) -> Plan:
        plan = PLANS.get(name)
        if plan is None:
            raise ProviderError(f"Unknown plan {name!r}; the plans are {', '.join(PLANS)}.", 422)
        return plan

    def _limit(self, plan: str) -> int:
        return self.limits_bytes.get(plan, PLANS[plan].storage_bytes)

    def _lookup(self, uuid: str) -> _Resource | None:
        with self.database.session(write=False) as session:
            row = resources.find(session, SERVICE, uuid)
            return None if row is None else _Resource.of(row)

    def _fresh(self, uuid: str) -> _Resource:
        found = self._lookup(uuid)
        if found is None:
            raise ProviderError("No such Postgres database.", 404)
        return found

    def _record(self, uuid: str, plan: Plan) -> _Resource:
        """The new resource's row, committed before anything exists on a server. A dedicated
        cluster's port is chosen and committed under the port lock, before its initdb."""
        if plan.dedicated:
            try:
                dedicated.location(uuid)
            except ValueError:
                raise ProviderError("A dedicated database needs an add-on id of letters, digits and dashes.",
                                    422) from None
        # Outside the transaction: this may start the embedded cluster.
        servers = {} if plan.dedicated else self._servers()
        suffix = _random(NAME_ALPHABET, NAME_LENGTH)
        ports = dedicated.port_lock(self.settings) if plan.dedicated else contextlib.nullcontext()
        try:
            with ports, self.database.transaction() as session:
                row = session.get(ProviderResource, uuid)
                if row is not None:  # made meanwhile by a concurrent call
                    if row.service != SERVICE:
                        raise ProviderError("That uuid belongs to another add-on service.", 422)
                    return _Resource.of(row)
                location, host, port = self._place(session, uuid, plan, servers)
                details = {"database": f"db_{suffix}", "user": f"u_{suffix}", "locker": f"l_{suffix}",
                           "password": _random(PASSWORD_ALPHABET, PASSWORD_LENGTH),
                           "host": host, "port": port, "restricted": False}
                return _Resource.of(resources.record(session, SERVICE, uuid, plan.name, location, details))
        except IntegrityError:  # a concurrent call committed the same uuid first
            return self._fresh(uuid)

    @staticmethod
    def _place(session: Any, uuid: str, plan: Plan, servers: dict[str, str]) -> tuple[str, str, int]:
        """Where a new resource goes: its location, and the host and port tenants connect to."""
        if plan.dedicated:
            try:
                port = dedicated.choose_port(dedicated.taken_ports(session))
            except ClusterError as error:
                log.error("%s", error)
                raise ProviderError(UNAVAILABLE, 503) from None
            return dedicated.location(uuid), LOOPBACK, port
        location = resources.least_loaded(session, SERVICE, list(servers))
        parts = urlsplit(servers[location])
        return location, parts.hostname or "localhost", parts.port or 5432

    def _begin_deleting(self, uuid: str) -> _Resource | None:
        """Mark the resource DELETING (committed, before any work); None if there is none to delete.

        None known yet: a DELETED tombstone is committed instead, because the provision may still be
        on its way (Berth gave up waiting for it, and this deprovision is its clean-up): arriving
        late, it then finds the add-on deprovisioned rather than create a database nobody owns."""
        try:
            with self.database.transaction() as session:
                row = resources.find(session, SERVICE, uuid)
                if row is None:
                    session.add(ProviderResource(id=uuid, service=SERVICE, plan="", state=DELETED, location=""))
                    return None
                if row.state == DELETED:
                    return None
                row.state = DELETING
                return _Resource.of(row)
        except IntegrityError:  # the provision recorded it first: delete what it made
            return self._begin_deleting(uuid)

    def _record_grant(self, uuid: str, grant_id: str) -> tuple[_Resource, dict[str, str]]:
        """The grant's role and password as recorded, or new ones recorded now (one transaction,
        the uuid's lock held); 404 if the add-on was deprovisioned meanwhile."""
        with self.database.transaction() as session:
            row = resources.find(session, SERVICE, uuid)
            if row is None or row.state != ACTIVE:
                raise ProviderError("No such Postgres database.", 404)
            resource = _Resource.of(row)
            entry = resource.grants.get(grant_id)
            if entry is None:
                entry = {"user": f"b_{_random(NAME_ALPHABET, NAME_LENGTH)}",
                         "password": _random(PASSWORD_ALPHABET, PASSWORD_LENGTH)}
                resource = replace(resource, details={**resource.details, "grants": {**resource.grants, grant_id: entry}})
                resources.set_details(row, resource.details)
            return resource, entry

    def _update(self, uuid: str, *, state: str | None = None, plan: str | None = None,
                only_from: tuple[str, ...] | None = None, **details: Any) -> _Resource:
        with self.database.transaction() as session:
            row = resources.find(session, SERVICE, uuid)
            if row is None:
                raise ProviderError("No such Postgres database.", 404)
            if only_from is not None and row.state not in only_from:
                raise ProviderError("This add-on has been deprovisioned meanwhile.", 422)
            if state is not None:
                row.state = state
            if plan is not None:
                row.plan = plan
            if details:
                resources.set_details(row, {**resources.details(row), **details})
            return _Resource.of(row)

    # -- servers ----------------------------------------------------------------------------------

    def _servers(self) -> dict[str, str]:
        """location -> admin URL, in configured order."""
        urls = self.settings.postgres_servers or (self._embedded(),)
        return {server_location(url): url for url in urls}

    def _embedded(self, *, refresh: bool = False) -> str:
        if self._embedded_url is None or refresh:
            try:
                self._embedded_url = embedded.ensure_embedded(self.settings)
            except ClusterError:
                log.exception("the embedded PostgreSQL cluster cannot be started")
                raise ProviderError(UNAVAILABLE, 503) from None
        return self._embedded_url

    def _connect(self, location: str, database: str | None = None) -> psycopg.Connection[Any]:
        """An autocommit admin connection to the server at `location` (its maintenance database,
        or `database`). Unreachable: ProviderError 503. The embedded cluster, or a live add-on's
        dedicated cluster, is started first if it died and the backends supervisor has not
        restarted it yet (or, dedicated, was never created)."""
        ours = dedicated.is_dedicated(location) or not self.settings.postgres_servers
        url = self._dedicated_url(location) if dedicated.is_dedicated(location) else self._servers().get(location)
        if url is None and not dedicated.is_dedicated(location):
            log.error("Postgres server %s holds resources but is no longer configured", location)
            raise ProviderError(UNAVAILABLE, 503)
        for attempt in (1, 2):
            if url is not None:
                conninfo = privileged.conninfo(url, database)  # settings pinned: see privileged.py
                try:
                    if database is None:  # the maintenance database: reused, a connection costs ~5 ms
                        return _ADMIN_POOL.borrow(conninfo, self.connect_timeout)  # type: ignore[return-value]
                    return privileged.verified(psycopg.connect(conninfo, autocommit=True,
                                                               connect_timeout=self.connect_timeout))
                except psycopg.OperationalError as error:
                    log.warning("cannot reach Postgres server %s: %s", location, error)
            if attempt == 1 and ours:
                url = self._start(location)
        raise ProviderError(UNAVAILABLE, 503)

    def _start(self, location: str) -> str:
        """Start the server Berth runs for `location` (created if need be): its admin URL."""
        if not dedicated.is_dedicated(location):
            return self._embedded(refresh=True)
        try:
            return dedicated.ensure_live(self.settings, self.database, dedicated.uuid_of(location))[0]
        except dedicated.NotLive:
            raise ProviderError("This add-on has been deprovisioned meanwhile.", 422) from None
        except (ClusterError, OSError, psycopg.Error) as error:
            log.error("the dedicated PostgreSQL cluster %s cannot be started: %s", location, error)
            raise ProviderError(UNAVAILABLE, 503) from None

    def _dedicated_url(self, location: str) -> str | None:
        """The admin URL of a dedicated cluster, None while it has never been created."""
        resource = self._fresh(dedicated.uuid_of(location))
        return dedicated.admin_url(self.settings, resource.uuid, int(resource.details["port"]))

    def _remove_dedicated(self, resource: _Resource) -> None:
        """Stop the add-on's own cluster at once and delete its files (idempotent)."""
        port = int(resource.details["port"])
        url = dedicated.admin_url(self.settings, resource.uuid, port)
        if url is not None:
            _ADMIN_POOL.discard(privileged.conninfo(url))
        try:
            dedicated.remove(self.settings, resource.uuid, port)
        except (ClusterError, OSError) as error:
            log.error("cannot remove the dedicated PostgreSQL cluster of %s: %s", resource.uuid, error)
            raise ProviderError("The Postgres server could not complete the change; try again later.",
                                503) from None

    @staticmethod
    def _backend(action: Callable[[], Any]) -> Any:
        """Run DDL; a server error becomes a 503 (logged, never with a password in it)."""
        try:
            return action()
        except psycopg.Error as error:
            log.error("Postgres server error %s: %s", error.sqlstate, error.diag.message_primary)
            raise ProviderError("The Postgres server could not complete the change; try again later.",
                                503) from None

    @staticmethod
    def _lock(conn: psycopg.Connection[Any], uuid: str) -> None:
        conn.execute("SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext(%s))", [f"berth-{SERVICE}:{uuid}"])

    @staticmethod
    def _unlock(conn: psycopg.Connection[Any], uuid: str) -> None:
        if not conn.closed:
            conn.execute("SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext(%s))", [f"berth-{SERVICE}:{uuid}"])

    # -- on the server ----------------------------------------------------------------------------

    def _create(self, conn: psycopg.Connection[Any], resource: _Resource) -> None:
        """§6.1, each step safe to repeat after a crash part-way."""
        plan = PLANS[resource.plan]
        user, database = resource.user, resource.database
        limit = 1 if resource.restricted else plan.connections
        role_options = sql.SQL("LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
            sql.Literal(resource.details["password"]), sql.Literal(limit))

        def run() -> None:
            verb = "ALTER" if _role_exists(conn, user) else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} WITH {}").format(sql.Identifier(user), role_options))
            _become_member(conn, user)
            if not _database_exists(conn, database):
                conn.execute(_q("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'", database, user))
            conn.execute(_q("REVOKE ALL ON DATABASE {} FROM PUBLIC", database))
            conn.execute(_q("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}", database, user))
            if conn.info.server_version < 150000:  # PUBLIC may CREATE in schema public before 15
                with self._connect(resource.location, database) as tenant_db:
                    tenant_db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")

        self._backend(run)

    def _make_grant_role(self, conn: psycopg.Connection[Any], resource: _Resource, role: str, password: str) -> None:
        """The grant's role as the add-on's role is now: its connection limit, LOGIN unless blocked.
        One round trip: a new role joins the add-on's role in its CREATE ROLE (a role left by an
        interrupted grant is altered and granted instead), committed (its WAL flush and the
        password's SCRAM hashing are most of a bind's cost), and only then the uuid's lock released,
        so a deprovision that takes it next finds the role to drop."""
        limit = 1 if resource.restricted else PLANS[resource.plan].connections
        options = sql.SQL("{} INHERIT PASSWORD {} CONNECTION LIMIT {}").format(
            sql.SQL("NOLOGIN" if resource.blocked else "LOGIN"), sql.Literal(password), sql.Literal(limit))
        make_or_repair = sql.SQL(
            "IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {name}) THEN "
            "ALTER ROLE {role} WITH {options}; GRANT {owner} TO {role}; "
            "ELSE CREATE ROLE {role} WITH {options} IN ROLE {owner}; END IF;").format(
                name=sql.Literal(role), role=sql.Identifier(role), options=options, owner=sql.Identifier(resource.user))
        conn.execute(sql.SQL("BEGIN; {}; COMMIT; SELECT pg_catalog.pg_advisory_unlock_all()").format(
            _do(conn, make_or_repair)))
        if isinstance(conn, _Borrowed):
            conn.unlocked()

    def _drop_grant_role(self, conn: psycopg.Connection[Any], resource: _Resource, role: str) -> None:
        """Each step safe to repeat. The tenant may have left anything under the role (objects,
        default privileges, database settings): the admin sessions pin their settings, its objects
        are handed over rather than dropped, and only then are its privileges dropped with it."""
        if not _role_exists(conn, role):
            return
        conn.execute(_q("ALTER ROLE {} NOLOGIN", role))
        _terminate(conn, user=role)
        heir = resource.locker if resource.restricted and _role_exists(conn, resource.locker) else resource.user
        _become_member(conn, role)
        _become_member(conn, heir)
        with self._connect(resource.location, resource.database) as tenant_db:
            tenant_db.execute(_q("REASSIGN OWNED BY {} TO {}", role, heir))
            tenant_db.execute(_q("DROP OWNED BY {}", role))  # what it was granted there, nothing it made
        conn.execute(_do(conn, _drop_role(role, member_first=False)))
        _terminate(conn, user=role)  # a session that was starting as it lost LOGIN

    def _drop(self, conn: psycopg.Connection[Any], resource: _Resource) -> None:
        """§6.3: the tenant's sessions end and its credentials stop working at once; takes the
        uuid's lock and releases it. Four round trips, each step safe to repeat; only the last
        commits anything besides DROP DATABASE (a commit waits for a WAL flush: the costly part).
        1. the lock; then the record read again, under it: a grant recorded after `resource` was
           read (its transaction overlapped the deprovision's) made its role holding the lock, so
           its role is known only now (read before, it would be left behind, a login with no rights);
        2. the roles' sessions ended; their oids (for step 4);
        3. DROP DATABASE … WITH (FORCE) (never inside a transaction block or a multi-statement string):
           the tenant's URL names a database that is gone;
        4. the tenant and locker roles dropped where they exist, committed; then every session of
           theirs still alive (one that logged in elsewhere meanwhile) ended; the lock released.
        Statements sharing a round trip are one simple-query string: no parameters, so every value
        is a psycopg.sql Literal and every name an Identifier."""
        self._backend(lambda: self._lock(conn, resource.uuid))
        current = self._lookup(resource.uuid) or resource
        grant_roles = sorted({*resource.login_roles[1:], *current.login_roles[1:]})
        database, roles = resource.database, (resource.user, resource.locker, *grant_roles)
        names = sql.SQL(", ").join(sql.Literal(role) for role in roles)

        def run() -> None:
            found = conn.execute(sql.SQL(
                "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                "WHERE usename IN ({}) AND pid <> pg_catalog.pg_backend_pid(); "
                "SELECT oid FROM pg_catalog.pg_roles WHERE rolname IN ({})").format(names, names))
            found.nextset()
            oids = [row[0] for row in found.fetchall()]
            if conn.info.server_version >= 130000:
                conn.execute(_q("DROP DATABASE IF EXISTS {} WITH (FORCE)", database))
            else:
                _terminate(conn, database=database)
                conn.execute(_q("DROP DATABASE IF EXISTS {}", database))
            member_first = not _is_superuser(conn)
            drops = sql.SQL(" ").join(_drop_role(role, member_first=member_first) for role in roles)
            stragglers = sql.SQL("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                                 "WHERE usesysid IN ({}) "
                                 "AND pid <> pg_catalog.pg_backend_pid(); ").format(
                sql.SQL(", ").join(sql.Literal(str(oid)) for oid in oids)) if oids else sql.SQL("")  # as oid
            conn.execute(sql.SQL("BEGIN; {}; COMMIT; {}SELECT pg_catalog.pg_advisory_unlock_all()").format(
                _do(conn, drops), stragglers))
            if isinstance(conn, _Borrowed):
                conn.unlocked()

        self._backend(run)

    def _size(self, conn: psycopg.Connection[Any], resource: _Resource) -> int:
        row = self._backend(lambda: conn.execute("SELECT pg_catalog.pg_database_size(%s)", [resource.database]).fetchone())
        return int(row[0])

    def _enforce_locked(self, conn: psycopg.Connection[Any], uuid: str) -> StorageChange | None:
        """Restrict or restore one resource (its advisory lock held), and record the new state.
        Restricting that fails blocks the database's connections instead (`_block`), never leaving
        it writable over its limit; a restore that fails leaves it restricted, for the next run."""
        resource = self._fresh(uuid)
        if resource.state != ACTIVE:
            return None
        size, limit = self._size(conn, resource), self._limit(resource.plan)
        over = size > limit
        # Restricted before `lockdown` existed (no `definers` recorded): restricted again, sealed.
        sealed = "definers" in resource.details
        if over == resource.restricted and not resource.blocked and (sealed or not over):
            return None
        try:
            if over and not (resource.restricted and sealed):
                self._restrict(conn, resource)
            elif not over and resource.restricted:
                self._restore(conn, resource)
            if resource.blocked:
                self._unblock(conn, self._fresh(uuid), restricted=over)
        except (psycopg.Error, ProviderError) as error:
            if not over:
                raise
            log.error("Postgres add-on %s is over its storage limit and could not be restricted (%s); "
                      "blocking its connections", uuid, _reason(error))
            self._backend(lambda: self._block(conn, resource))
            if resource.blocked:
                return None  # blocked, and its owners told, by an earlier run
            self._update(uuid, blocked=True)
            return StorageChange(uuid, resource.plan, size, limit, restricted=False, blocked=True)
        self._update(uuid, restricted=over, blocked=False)
        log.info("Postgres add-on %s %s: %d of %d bytes", uuid, "restricted" if over else "restored",
                 size, limit)
        if over == resource.restricted:
            return None  # only unblocked: the owners were told of its restriction before
        return StorageChange(uuid, resource.plan, size, limit, over)

    def _block(self, conn: psycopg.Connection[Any], resource: _Resource) -> None:
        """No session of the tenant's, now or until unblocked: its role may not log in (which its
        owner cannot grant back, unlike CONNECT) nor connect, and its sessions are ended."""
        user, database = resource.user, resource.database
        for role in resource.login_roles:  # grants' roles too: they would log in as members of the tenant's
            conn.execute(_q("ALTER ROLE {} NOLOGIN", role))
        conn.execute(_q("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM {}", database, user))
        for role in resource.login_roles:
            _terminate(conn, user=role)

    def _unblock(self, conn: psycopg.Connection[Any], resource: _Resource, *, restricted: bool) -> None:
        user, database = resource.user, resource.database
        conn.execute(_q("GRANT CONNECT ON DATABASE {} TO {}", database, user))
        if not restricted:
            conn.execute(_q("GRANT TEMPORARY ON DATABASE {} TO {}", database, user))
        for role in resource.login_roles:
            conn.execute(_q("ALTER ROLE {} LOGIN", role))

    def _restrict(self, conn: psycopg.Connection[Any], resource: _Resource) -> None:
        """§6.2: ownership to the locker role; the tenant keeps read, delete and one connection.
        Failing, it leaves the tenant's ownership where it was: the caller blocks the database."""
        user, locker, database = resource.user, resource.locker, resource.database
        if not _role_exists(conn, locker):
            conn.execute(_q("CREATE ROLE {} NOLOGIN", locker))
        _become_member(conn, locker)
        _limit_connections(conn, resource.login_roles, 1)
        _terminate(conn, database=database)
        with self._connect(resource.location, database) as tenant_db:
            for role in resource.login_roles[1:]:  # what grants made goes to the locker too
                _become_member(conn, role)
                tenant_db.execute(_q("REASSIGN OWNED BY {} TO {}", role, locker))
            tenant_db.execute(_q("REASSIGN OWNED BY {} TO {}", user, locker))  # the database too
            tenant_db.execute(_q("ALTER DATABASE {} OWNER TO {}", database, locker))
            tenant_db.execute(_q("REVOKE ALL ON DATABASE {} FROM {}", database, user))
            tenant_db.execute(_q("GRANT CONNECT ON DATABASE {} TO {}", database, user))
            schemas = _schemas(tenant_db)
            for schema in schemas:
                tenant_db.execute(_q("GRANT USAGE ON SCHEMA {} TO {}", schema, user))
                tenant_db.execute(_q("GRANT SELECT, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {} TO {}",
                                     schema, user))
                tenant_db.execute(_q("GRANT SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}", schema, user))
            # Recorded before they change, merged with a crashed attempt's: restoring needs them all.
            routines = sorted({*resource.details.get("definers", []), *lockdown.definers(tenant_db, locker)})
            self._update(resource.uuid, definers=routines)
            lockdown.seal(tenant_db, locker, routines, schemas, superuser=_is_superuser(conn))

    def _restore(self, conn: psycopg.Connection[Any], resource: _Resource) -> None:
        """Undo `_restrict`: everything back to the tenant, the locker dropped, the plan's limit."""
        user, locker, database = resource.user, resource.locker, resource.database
        if _role_exists(conn, locker):
            _become_member(conn, locker)
            with self._connect(resource.location, database) as tenant_db:
                schemas = _schemas(tenant_db)
                lockdown.unseal(tenant_db, locker, resource.details.get("definers", []), schemas,
                                superuser=_is_superuser(conn))
                for schema in schemas:  # while the locker owns them: not the owner's own
                    tenant_db.execute(_q("REVOKE SELECT, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {} FROM {}",
                                         schema, user))
                    tenant_db.execute(_q("REVOKE SELECT ON ALL SEQUENCES IN SCHEMA {} FROM {}", schema, user))
                    tenant_db.execute(_q("REVOKE USAGE ON SCHEMA {} FROM {}", schema, user))
                tenant_db.execute(_q("REASSIGN OWNED BY {} TO {}", locker, user))  # the database too
                tenant_db.execute(_q("DROP OWNED BY {}", locker))
            conn.execute(_q("DROP ROLE {}", locker))
            self._update(resource.uuid, definers=[])
        conn.execute(_q("ALTER DATABASE {} OWNER TO {}", database, user))
        conn.execute(_q("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}", database, user))
        _limit_connections(conn, resource.login_roles, PLANS[resource.plan].connections)


__all__ = ["CONFIG_VAR", "SERVICE", "PostgresProvider", "StorageChange", "server_location"]
