"""SQLAlchemy 2 base, column types, engines and sessions; Alembic migrations applied on start.

SQLite serialises writers, and a deferred transaction that read first may fail when it
later tries to write. So a Database has two engines: one whose transactions start with
BEGIN IMMEDIATE on SQLite (requests that write), and one in autocommit mode where every
statement is its own transaction (reads, and single-statement writes such as spending a
rate-limit token). Reads thus see committed data statement by statement, which is what
PostgreSQL's READ COMMITTED gives inside a transaction anyway, and hold no snapshot that
would keep SQLite from checkpointing its WAL.

A third engine, `lossy_engine`, is the autocommit engine minus durability on PostgreSQL: its
commits do not wait for the WAL flush. It is for writes whose loss in a crash is harmless
(spending a rate-limit token) and for nothing else.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import Connection, DateTime, Engine, Executable, String, Text, create_engine, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from berth import crypto
from berth.hooks import SESSION_HOOKS, Hooks

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)
# Every process migrates on start; Alembic's INFO lines (plugins, context, each step) would flood
# the log. Its warnings still show; `migrate` logs one line when the schema moved.
logging.getLogger("alembic").setLevel(logging.WARNING)
# The database holds hashed API keys and encrypted secrets: readable by Berth alone. SQLite gives
# its -wal and -shm files the database file's mode, so creating that 0600 covers them.
SQLITE_FILE_MODE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
UUID_LENGTH = 36


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored naive in UTC (SQLite has no zones) and always returned aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class EncryptedText(TypeDecorator[str]):
    """A secret stored as a Fernet token; `admin rotate-keys` finds every column of this type."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else crypto.keyring().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else crypto.keyring().decrypt(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), str: String(255)}


class Database:
    def __init__(self, url: str, hooks: Hooks | None = None) -> None:
        self.url = url
        # Every session carries them (`hooks_of`), so a service function deep in a unit of work can
        # announce an event (a release was cut) without each caller passing the registry along.
        self.hooks = hooks if hooks is not None else Hooks()
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _make_sqlite_files_private(url)
            self.write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
            self.autocommit_engine = _sqlite_engine(url, begin=None)
            # synchronous=NORMAL in WAL mode already commits without an fsync.
            self.lossy_engine = self.autocommit_engine
        else:
            self.write_engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
            # Its own pool of autocommit connections: one round trip per statement. No
            # pre-ping on this hot path: after a database restart the first statement per
            # process fails, and SQLAlchemy then discards the whole pool.
            self.autocommit_engine = create_engine(url, isolation_level="AUTOCOMMIT",
                                                   pool_size=5, max_overflow=10)
            self.lossy_engine = _postgres_lossy_engine(url)
        self._read = sessionmaker(self.autocommit_engine, expire_on_commit=False, info={SESSION_HOOKS: self.hooks})
        self._write = sessionmaker(self.write_engine, expire_on_commit=False, info={SESSION_HOOKS: self.hooks})

    def session(self, *, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection where each statement commits on its own (no BEGIN at all)."""
        with self.autocommit_engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work outside a request (admin commands, workers): commit or roll back."""
        with self.session() as session, session.begin():
            yield session

    def migrate(self, lock_dir: Path) -> str | None:
        """Bring the schema to head; a file lock keeps concurrent workers from racing.

        Returns the revision it started from: None for an empty (new) database."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(lock_dir / "migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self.write_engine.begin() as connection:
                if not self.is_sqlite:
                    # Control-plane processes on several machines share one Postgres.
                    connection.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS_DIR))
                config.attributes["connection"] = connection
                before = MigrationContext.configure(connection).get_current_revision()
                command.upgrade(config, "head")
                after = MigrationContext.configure(connection).get_current_revision()
        if after != before:
            log.info("Database schema upgraded from %s to %s", before or "(empty)", after)
        return before

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every distinct engine (statement counters listen on all of them)."""
        return tuple(dict.fromkeys((self.write_engine, self.autocommit_engine, self.lossy_engine)))

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()


class PreparedStatement:
    """A Core statement compiled once per dialect and run straight on a pooled DB-API cursor.

    For the hottest statements only (admitting a request, reading config vars, provisioning): it
    skips SQLAlchemy's per-execution work, which costs several times what SQLite itself spends on
    such a statement. Parameters still pass through their types' bind processors; rows
    come back as the driver gives them (no result processing, so no decryption). The engine's
    `before_cursor_execute` listeners still see each statement (with no SQLAlchemy connection),
    so statement counts stay true.
    """

    def __init__(self, statement: Executable) -> None:
        self._statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> "_Compiled":
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            # The dialect's own implementation of each type: PostgreSQL's JSON, for one, differs.
            processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                          for bind, name in compiled.bind_names.items()}
            order = list(compiled.positiontup or []) if compiled.positional else None
            found = self._compiled[dialect.name] = _Compiled(
                compiled.string, order, dict(compiled.params),  # literals' values as defaults
                {key: processor for key, processor in processors.items() if processor})
        return found

    def run(self, engine: Engine, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """On a pooled connection of its own, committed at once (meant for the autocommit engine)."""
        connection = engine.raw_connection()
        try:
            rows = self._execute(engine, connection, params)
            connection.commit()  # a no-op in autocommit mode, which is how it is meant to run
            return rows
        finally:
            connection.close()

    def run_in(self, session: Session, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Inside the session's transaction: it commits or rolls back with the rest."""
        connection = session.connection()
        return self._execute(connection.engine, connection.connection, params)

    def _execute(self, engine: Engine, connection: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        compiled = self._for(engine.dialect)
        values = {**compiled.defaults, **params}
        for key, processor in compiled.processors.items():
            values[key] = processor(values[key])
        arguments = [values[name] for name in compiled.order] if compiled.order is not None else values
        cursor = connection.cursor()
        try:
            if engine.dispatch.before_cursor_execute:  # statement counters see these too
                engine.dispatch.before_cursor_execute(None, cursor, compiled.sql, arguments, None, False)
            cursor.execute(compiled.sql, arguments)
            return cursor.fetchall() if cursor.description is not None else []
        finally:
            cursor.close()


# JSON built in SQL, so one statement can return a row with its related rows. The one place the
# dialects differ: SQLite's json_object/json_array/json_group_array/json(), PostgreSQL's
# json_build_object/json_build_array/json_agg (a JSON column is json there already).
class json_record(FunctionElement[Any]):
    """A JSON object of alternating key, value arguments."""
    inherit_cache = True


class json_list(FunctionElement[Any]):
    """A JSON array of the arguments."""
    inherit_cache = True


class json_rows(FunctionElement[Any]):
    """Aggregate: a JSON array with one element per row (NULL when there is no row)."""
    inherit_cache = True


class json_column(FunctionElement[Any]):
    """A JSON-typed column's value, nested as JSON (not as a string) inside the above."""
    inherit_cache = True


def _sqlite_or_postgresql(construct: type, sqlite_name: str, postgresql_name: str) -> None:
    @compiles(construct)
    def _default(element: Any, compiler: Any, **kw: Any) -> str:
        return f"{sqlite_name}({compiler.process(element.clauses, **kw)})"

    @compiles(construct, "postgresql")
    def _postgresql(element: Any, compiler: Any, **kw: Any) -> str:
        arguments = compiler.process(element.clauses, **kw)
        return f"{postgresql_name}({arguments})" if postgresql_name else f"({arguments})"


_sqlite_or_postgresql(json_record, "json_object", "json_build_object")
_sqlite_or_postgresql(json_list, "json_array", "json_build_array")
_sqlite_or_postgresql(json_rows, "json_group_array", "json_agg")
_sqlite_or_postgresql(json_column, "json", "")


class returned(FunctionElement[Any]):
    """A correlated subquery for a RETURNING clause, compiled with table names: SQLite's compiler
    drops them throughout RETURNING, which leaves `id` ambiguous inside a subquery."""
    inherit_cache = True


@compiles(returned)
def _compile_returned(element: Any, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **{**kw, "include_table": True})


def loaded_json(value: Any) -> Any:
    """What a JSON expression above returns through a raw cursor: text on SQLite, parsed on psycopg."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


class PreparedByCount:
    """Prepared statements for a varying number of rows or keys (a multi-row VALUES, an IN list):
    `build(n)` makes the one for `n`, prepared on first use."""

    def __init__(self, build: Callable[[int], Executable]) -> None:
        self._build = build
        self._prepared: dict[int, PreparedStatement] = {}

    def __getitem__(self, count: int) -> PreparedStatement:
        found = self._prepared.get(count)
        if found is None:
            found = self._prepared[count] = PreparedStatement(self._build(count))
        return found


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: list[str] | None  # parameter names in order, for positional paramstyles
    defaults: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]


def _make_sqlite_files_private(url: str) -> None:
    """Creates the database file 0600 before SQLite would (with the umask's mode), and tightens
    the files of one left readable by an older Berth."""
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if path.parent.is_dir():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, SQLITE_FILE_MODE))  # an empty file is an empty database
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists() and stat.S_IMODE(companion.stat().st_mode) & 0o077:
            companion.chmod(SQLITE_FILE_MODE)


def _postgres_lossy_engine(url: str) -> Engine:
    """Autocommit connections whose commits return before the WAL reaches the disk.

    Waiting for that flush was the largest part of an API request's time on PostgreSQL. A
    crash may then lose the last fraction of a second of commits made here, which is only
    acceptable for writes nobody misses: a rate-limit token spent and forgotten hands out a
    few extra requests. Never run any other write on this engine.
    """
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A session setting, not the URL's `options`, so an operator's own options still apply.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET synchronous_commit = off")
        cursor.close()

    return engine


def _sqlite_engine(url: str, *, begin: str | None) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           # Without BEGIN there is never a transaction to roll back.
                           pool_reset_on_return="rollback" if begin else None)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if begin:  # None: no BEGIN, so every statement commits on its own
            connection.exec_driver_sql(begin)

    return engine


class json_array_agg(FunctionElement[Any]):
    """JSON array of a column's values over a group: `json_group_array` on SQLite, `json_agg` on
    PostgreSQL (NULL there over no rows). Lets one statement carry a list along its row."""

    inherit_cache = True
    name = "json_array_agg"


class json_object_agg(FunctionElement[Any]):
    """JSON object of key/value columns over a group: `json_group_object` on SQLite,
    `json_object_agg` on PostgreSQL (NULL there over no rows)."""

    inherit_cache = True
    name = "json_object_agg"


def _rendered_as(sql_name: str) -> Callable[..., str]:
    def render(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
        return f"{sql_name}({compiler.process(element.clauses, **kw)})"
    return render


for _construct, _names in ((json_array_agg, {"sqlite": "json_group_array", "postgresql": "json_agg"}),
                           (json_object_agg, {"sqlite": "json_group_object", "postgresql": "json_object_agg"})):
    for _dialect, _sql_name in _names.items():
        compiles(_construct, _dialect)(_rendered_as(_sql_name))


def json_value(raw: Any) -> Any:
    """A JSON value as a raw cursor gives it: text on SQLite, already parsed by psycopg."""
    return json.loads(raw) if isinstance(raw, (str, bytes)) else raw
