"""The migrations build exactly the schema the models describe (on SQLite and PostgreSQL)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from berth.addons.postgres.cluster import LocalPostgres
from berth.db import Base, Database

MODEL_MODULES = ("berth.accounts", "berth.installation_secrets", "berth.platform.models", "berth.platform.logs.models",
                 "berth.broker.models",
                 "berth.broker.osb.models", "berth.addons.models", "berth.addons.logging.models", "berth.web.models")


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migrations_and_models_agree(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"
    else:
        server: LocalPostgres = request.getfixturevalue("postgres_server")
        url = server.create_database("schema_check").replace("postgresql://", "postgresql+psycopg://", 1)
    database = Database(url)
    try:
        database.migrate(tmp_path)
        with database.write_engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        database.dispose()
    assert differences == []
