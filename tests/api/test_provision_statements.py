"""The statements one provision costs (request + worker), pinned so they cannot creep back.

Counted with a real SQLAlchemy `before_cursor_execute` listener on both of the Database's
engines while the API answers `POST /apps/{app}/addons` and a worker runs the operation against
the example partner (a real process). Statements `PreparedStatement` runs on raw DB-API cursors (the
admit of an authenticated request among them) reach the same listeners.
Transactions' BEGINs are left out of the pins: SQLite's `BEGIN IMMEDIATE` passes through the
listener, psycopg's implicit BEGIN does not; there is one per transaction (request 1, worker 1: the claim commits on its own).
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import event

from berth import create_app
from berth.jobs.worker import Worker
from berth.config import Settings
from tests.api.conftest import register_partner
from tests.conftest import Api, User, empty_all_tables
from tests.partners.harness import ExamplePartner

# request: admit; the context (app, plan and service, attachment names, config var owners, name and
# one-per-app checks); add-on, attachment, operation. Without a wait the answer is what it wrote;
# with one, one look per wake (the add-on's state with its open operation) adds a sixth.
REQUEST_STATEMENTS = 5
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

    engines = database.engines
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


@pytest.fixture
def waiting_app(settings: Settings) -> Iterator[Flask]:
    """Berth as `make run` serves it: a provision waits for a quick provider's answer."""
    flask_app = create_app(replace(settings, provision_wait_seconds=10))
    yield flask_app
    empty_all_tables(flask_app)
    flask_app.extensions["berth.database"].dispose()


@pytest.mark.parametrize(("mode", "state", "var_names"),
                         [("sync", "provisioned", ["EXAMPLE_URL"]), ("failing", "deprovisioned", [])])
def test_a_quick_answer_costs_the_request_one_look(waiting_app: Flask, partner: ExamplePartner, mode: str,
                                                   state: str, var_names: list[str]) -> None:
    """The worker answers while the request waits: woken by the worker's signal, the request
    reads the add-on's state and open operation in one statement and answers with the outcome
    (a failed add-on reads as `deprovisioned`, detached: no vars)."""
    api = Api(waiting_app)
    carol = api.make_user("carol@example.com")
    worker = register_partner(waiting_app, partner, requires=("many_per_app",))
    partner.set_mode(mode)
    assert api.post("/apps", carol, json={"name": "quick"}).status_code == 201
    database = waiting_app.extensions["berth.database"]
    request_thread, seen = threading.get_ident(), []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == request_thread and not statement.startswith("BEGIN"):
            seen.append(statement)

    def answer_when_queued() -> None:  # the worker process, as a thread
        deadline = time.monotonic() + 10
        while not worker.run_one(look_first=True) and time.monotonic() < deadline:
            time.sleep(0.005)

    engines = database.engines
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    answering = threading.Thread(target=answer_when_queued)
    answering.start()
    started = time.monotonic()
    try:
        response = api.post("/apps/quick/addons", carol, json={"plan": "example-partner"})
        answered_after = time.monotonic() - started
    finally:
        answering.join()
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["state"] == state and answer["config_vars"] == var_names, answer
    assert bool(answer["provider_id"]) == (mode == "sync") and bool(answer["failure_message"]) == (mode != "sync")
    assert answer == api.get(f"/addons/{answer['id']}", carol).get_json()  # as a later read tells it
    # Not the whole wait: a failure's clean-up deprovision is not what the request waits for.
    assert answered_after < 5, answered_after
    looks = [statement for statement in seen if "FROM operations" in statement]
    # One look per wake: the signal's, and one per 50 ms poll should the machine be slow.
    assert len(seen) - len(looks) == REQUEST_STATEMENTS and 1 <= len(looks) <= 5, "\n".join(seen)
