"""The worker side of a provision: claims, concurrency, secrets at rest.

A worker applies a provider's answer only while the operation is still its claim.

A worker that stalls past its lease (a long GC pause, a stopped VM) loses the operation to
another worker, which claims it again and calls the provider itself. The first worker's late
answer, success or refusal, must then change nothing: the add-on, its config and the operation
are the second claim's to settle.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from flask import Flask
from sqlalchemy import text, update

from berth.broker import outcomes
from berth.broker.addon_jobs import AddonOperations
from berth.broker.models import Operation
from berth.broker.partner_api.client import Outcome, ProviderAnswer
from berth.db import utcnow
from tests.api.conftest import register_partner
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner


def test_a_worker_whose_lease_lapsed_applies_nothing(app: Flask, api: Api, alice: User,
                                                     partner: ExamplePartner) -> None:
    worker = register_partner(app, partner)
    database, settings = app.extensions["berth.database"], app.config["BERTH_SETTINGS"]
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    addon = api.post("/apps/shop/addons", alice, json={"plan": "example-partner"}).get_json()
    stalled = outcomes.claim_call(database)
    assert stalled is not None and stalled.addon_id == addon["id"]
    with database.transaction() as session:  # its lease runs out while it waits
        session.execute(update(Operation).where(Operation.id == stalled.operation_id)
                        .values(lease_until=utcnow() - timedelta(seconds=1)))
    again = outcomes.claim_call(database)
    assert again is not None and again.operation_id == stalled.operation_id
    assert again.attempts == stalled.attempts + 1

    late_answers = (ProviderAnswer(Outcome.SUCCEEDED, 200, provider_id="late",
                                   config={"EXAMPLE_URL": "https://late.example/"}),
                    ProviderAnswer(Outcome.REFUSED, 422, message="No."))
    for late in late_answers:
        with database.transaction() as session:
            outcomes.apply_answer(session, settings, stalled, late)
        shown = api.get(f"/addons/{addon['id']}", alice).get_json()
        assert shown["state"] == "provisioning", late
        assert api.get("/apps/shop/config-vars", alice).get_json() == {}
        with database.session(write=False) as session:
            operation = session.get(Operation, stalled.operation_id)
            assert operation is not None and operation.state == "running" and operation.attempts == again.attempts

    with database.transaction() as session:
        outcomes.apply_answer(session, settings, again, worker.job_type(AddonOperations.name).call_provider(again))
    assert api.get(f"/addons/{addon['id']}", alice).get_json()["state"] == "provisioned"
    config = api.get("/apps/shop/config-vars", alice).get_json()
    assert list(config) == ["EXAMPLE_URL"] and config["EXAMPLE_URL"] != "https://late.example/"


def test_provisions_and_config_changes_at_once_keep_every_var_and_dense_versions(
        app: Flask, api: Api, alice: User, partner: ExamplePartner) -> None:
    """Three worker threads apply provisions to one app while users change its config: on
    PostgreSQL each side locks the app before reading its config, so no change is lost, and
    every release gets its own version (1 for the app, one per provision, one per change)."""
    worker = register_partner(app, partner, requires=("many_per_app",))
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    addons = [api.post("/apps/shop/addons", alice, json={"plan": "example-partner"}).get_json()
              for _ in range(6)]

    def drain(_: int) -> int:
        return worker.drain()

    def change(index: int) -> int:
        return Api(app).patch("/apps/shop/config-vars", alice, json={f"USER_{index}": str(index)}).status_code

    with ThreadPoolExecutor(max_workers=9) as pool:
        drained = [pool.submit(drain, i) for i in range(3)]
        statuses = list(pool.map(change, range(6)))
        assert sum(future.result() for future in drained) == 6
    assert statuses == [200] * 6
    for addon in addons:
        assert api.get(f"/addons/{addon['id']}", alice).get_json()["state"] == "provisioned"
    config = api.get("/apps/shop/config-vars", alice).get_json()
    assert {f"USER_{i}" for i in range(6)} <= set(config)
    assert len([name for name in config if name.startswith("EXAMPLE")]) == 6
    versions = sorted(r["version"] for r in api.get("/apps/shop/releases", alice).get_json())
    assert versions == list(range(1, 14))


def test_a_provision_stores_no_plaintext_secret(app: Flask, api: Api, alice: User,
                                                partner: ExamplePartner) -> None:
    """The provider's config reaches the add-on, the app's vars and the release only encrypted."""
    worker = register_partner(app, partner)
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    api.post("/apps/shop/addons", alice, json={"plan": "example-partner"})
    assert worker.drain() == 1
    secret = api.get("/apps/shop/config-vars", alice).get_json()["EXAMPLE_URL"]
    database = app.extensions["berth.database"]
    with database.write_engine.connect() as connection:
        stored = [json.dumps(list(row), default=str) for table in ("addons", "config_vars", "releases")
                  for row in connection.execute(text(f"SELECT * FROM {table}"))]
    assert stored and not any(secret in row for row in stored)
