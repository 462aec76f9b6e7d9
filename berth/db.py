"""SQLAlchemy 2 base, column types, engines and sessions; Alembic migrations applied on start.

SQLite serialises writers, and a deferred transaction that read first may fail when it
later tries to write. So a Database has two engines over the same file: one whose
transactions start with BEGIN IMMEDIATE (requests that write) and one for reads. On
PostgreSQL both are the same engine.
"""
from __future__ import annotations

import contextlib
import fcntl
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import DateTime, Engine, String, Text, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from berth import crypto

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
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
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.read_engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
        else:
            self.read_engine = self.write_engine = create_engine(
                url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    def session(self, *, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work outside a request (admin commands, workers): commit or roll back."""
        with self.session() as session, session.begin():
            yield session

    def migrate(self, lock_dir: Path) -> None:
        """Bring the schema to head; a file lock keeps concurrent workers from racing."""
        from alembic import command
        from alembic.config import Config

        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / "migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self.write_engine.begin() as connection:
                if not self.is_sqlite:
                    # Control-plane processes on several machines share one Postgres.
                    connection.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS_DIR))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")

    def dispose(self) -> None:
        self.read_engine.dispose()
        self.write_engine.dispose()


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

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
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
