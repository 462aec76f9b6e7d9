"""The statements one provision costs (request + worker), pinned so they cannot creep back.

Counted with a real SQLAlchemy `before_cursor_execute` listener on both of the Database's
engines while the API answers `POST /apps/{app}/addons` and a worker runs the operation against
the example partner (a real process). Statements `PreparedStatement` runs on raw DB-API cursors (the
admit of an authenticated request among them) reach the same listeners.
Transactions' BEGINs are left out of the pins: SQLite's `BEGIN IMMEDIATE` passes through the
listener, psycopg's implicit BEGIN does not; there is one per transaction (request 1, worker 1: the claim commits on its own).
"""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import event

from berth.broker.worker import Worker
from tests.api.conftest import register_partner
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner

# request: admit, account, app, service, its plans, name check, add-on, attachment names, attachment,
# config clash check, operation, then (committed) the add-on with its attachments.
REQUEST_STATEMENTS = 12
# worker: the claim, returning what the call needs (committed on its own; the OAuth grant is
# signed, not stored); then, in one transaction, the add-on provisioned if the operation is still
# this claim's (returning its attachments; locking their apps on PostgreSQL), the apps stamped
# with their last version and config, the vars upserted, the releases, the operation done.
WORKER_STATEMENTS = {"postgresql": 6, "sqlite": 6}


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    database = app.extensions["berth.database"]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    engines = (database.write_engine, database.autocommit_engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", count)


def test_one_provision_costs_a_pinned_number_of_statements(
        app: Flask, api: Api, alice: User, partner: ExamplePartner, statements: list[str]) -> None:
    worker: Worker = register_partner(app, partner, requires=("many_per_app",))
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    for round_ in range(3):  # the first provision on an app is no cheaper or dearer than later ones
        statements.clear()
        response = api.post("/apps/shop/addons", alice, json={"plan": "example-partner"})
        assert response.status_code == 201, response.get_json()
        request_side = len(statements)
        statements.clear()
        assert worker.run_one(look_first=False)
        worker_side = list(statements)
        expected = (REQUEST_STATEMENTS, WORKER_STATEMENTS[app.extensions["berth.database"].write_engine.dialect.name])
        assert (request_side, len(worker_side)) == expected, \
            f"round {round_}: request {request_side}, worker {len(worker_side)}:\n" + "\n".join(worker_side)
        addon = api.get(f"/addons/{response.get_json()['id']}", alice).get_json()
        assert addon["state"] == "provisioned"
    config = api.get("/apps/shop/config-vars", alice).get_json()
    assert len([name for name in config if name.startswith("EXAMPLE")]) == 3
