"""Shared fixtures: the control plane on SQLite and on a real PostgreSQL the fixtures start.

Each backend is set up once per test run; every test gets a fresh Flask app over it and the
tables are emptied afterwards, so tests are isolated without paying for a new database.
"""
from __future__ import annotations

import base64
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from berth import create_app
from berth.accounts import create_account
from berth.addons.postgres.cluster import LocalPostgres
from berth.config import Settings
from berth.db import Base

if TYPE_CHECKING:
    from tests.s3_server import S3Server

ACCEPT = "application/vnd.heroku+json; version=3"
TEST_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    with tempfile.TemporaryDirectory(prefix="berth-pg-") as directory:
        server = LocalPostgres(Path(directory) / "cluster")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("berth-data")


@pytest.fixture(scope="session")
def postgres_database_url(postgres_server: LocalPostgres) -> str:
    """The control-plane database on the test PostgreSQL, created once per run (per xdist worker)."""
    return postgres_server.create_database("berth_test").replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, session_dir: Path) -> str:
    # Set up again whenever a worker's run switches between the two: only the first creates anything.
    if request.param == "sqlite":
        return f"sqlite:///{session_dir / 'control-plane.sqlite3'}"
    return str(request.getfixturevalue("postgres_database_url"))


@pytest.fixture
def settings(database_url: str, session_dir: Path) -> Settings:
    # No worker runs beside the test client: requests need not wait for one, and tests run
    # queued operations themselves (Worker.drain); retries are due at once. Test partners and
    # drains listen on loopback: private targets are allowed (tests of the refusal turn it off).
    return Settings(data_dir=session_dir, database_url=database_url, secret_keys=(TEST_KEY,),
                    port=5000, provision_wait_seconds=0, retry_base_seconds=0, builtin_addons=False,
                    allow_private_targets=True)


def empty_all_tables(app: Flask) -> None:
    database = app.extensions["berth.database"]
    with database.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))


@contextlib.contextmanager
def running_app(settings: Settings) -> Iterator[Flask]:
    """A Flask app over `settings`, its tables emptied and its engine closed on the way out."""
    flask_app = create_app(settings)
    try:
        yield flask_app
    finally:
        empty_all_tables(flask_app)
        flask_app.extensions["berth.database"].dispose()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    with running_app(settings) as flask_app:
        yield flask_app


@dataclass
class User:
    id: str
    email: str
    password: str
    key: str


class Api:
    """A thin client over Flask's test client speaking like the Heroku CLI."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()

    def make_user(self, email: str, password: str | None = None) -> User:
        """Without a password unless asked: argon2 hashing is deliberately slow."""
        with self.app.extensions["berth.database"].transaction() as session:
            account, key = create_account(session, email, password)
            return User(account.id, account.email, password or "", key.clear_token or "")

    def request(self, method: str, path: str, user: User | None = None, *, json: Any = None,
                data: str | bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        sent = {"Accept": ACCEPT}
        if user is not None:
            sent["Authorization"] = f"Bearer {user.key}"
        sent.update(headers or {})
        return self.client.open(path, method=method, json=json, data=data, headers=sent)

    def get(self, path: str, user: User | None = None, **kw: Any) -> Any:
        return self.request("GET", path, user, **kw)

    def post(self, path: str, user: User | None = None, **kw: Any) -> Any:
        return self.request("POST", path, user, **kw)

    def patch(self, path: str, user: User | None = None, **kw: Any) -> Any:
        return self.request("PATCH", path, user, **kw)

    def delete(self, path: str, user: User | None = None, **kw: Any) -> Any:
        return self.request("DELETE", path, user, **kw)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app)


@pytest.fixture
def alice(api: Api) -> User:
    return api.make_user("alice@example.com", "correct horse battery")


@pytest.fixture
def bob(api: Api) -> User:
    return api.make_user("bob@example.com")


@pytest.fixture(scope="session")
def s3_server() -> Iterator["S3Server"]:
    """A real S3 server (versitygw) for the whole run; each test makes its own bucket (s3_bucket).
    Its files live outside pytest's temporary dirs, which another run's clean-up may remove."""
    from tests.s3_server import running_versitygw

    with tempfile.TemporaryDirectory(prefix="berth-s3-") as directory, \
            running_versitygw(Path(directory)) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: "S3Server") -> str:
    return s3_server.new_bucket()


@pytest.fixture
def s3_settings(settings: Settings, s3_server: "S3Server", s3_bucket: str) -> Settings:
    """`settings` with slugs and sources in a fresh bucket (under the prefix `berth/`)."""
    return settings.with_overrides(slug_store=f"s3://{s3_bucket}/berth", s3_endpoint=s3_server.endpoint,
                                   s3_access_key_id=s3_server.access_key, s3_secret_access_key=s3_server.secret_key)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with every Swarm-harness file on one worker (tests/scheduling.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.scheduling import SharedClusterScheduling
    return SharedClusterScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.scheduling import check_cluster_tests_are_grouped
    check_cluster_tests_are_grouped(items)
