"""A worker applies a provider's answer only while the operation is still its claim.

A worker that stalls past its lease (a long GC pause, a stopped VM) loses the operation to
another worker, which claims it again and calls the provider itself. The first worker's late
answer, success or refusal, must then change nothing: the add-on, its config and the operation
are the second claim's to settle.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import update

from berth.broker import outcomes
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
        outcomes.apply_answer(session, settings, again, worker._call(again))
    assert api.get(f"/addons/{addon['id']}", alice).get_json()["state"] == "provisioned"
    config = api.get("/apps/shop/config-vars", alice).get_json()
    assert list(config) == ["EXAMPLE_URL"] and config["EXAMPLE_URL"] != "https://late.example/"
