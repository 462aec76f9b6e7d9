"""Drain delivery's failure rules (Logplex's): a 4xx drops the batch at once; an unreachable
drain is retried twice, then the batch is dropped, so one dead drain never blocks the stream."""
from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from berth.outbound import TargetPolicy
from berth.platform.logs import drains, store
from berth.platform.logs.forwarder import Forwarder
from berth.platform.logs.models import LogDrain
from berth.platform.models import App
from tests.conftest import Api, User
from tests.live_server import free_port
from tests.partners.harness import ExamplePartner

LOOPBACK_ALLOWED = TargetPolicy(allow_private=True)  # the drains here listen on 127.0.0.1


def _drain_with_lines(app: Flask, api: Api, alice: User, url: str) -> str:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    database = app.extensions["berth.database"]
    with database.transaction() as session:
        shop = session.scalar(select(App).where(App.name == "shop"))
        assert shop is not None
        drain = drains.add_drain(session, shop, url, targets=LOOPBACK_ALLOWED)
        store.append(session, shop.id, [store.Entry("app", "web.1", f"line {n}") for n in range(2)])
        return drain.id


def _cursor(app: Flask, drain_id: str) -> int:
    with app.extensions["berth.database"].session(write=False) as session:
        drain = session.get(LogDrain, drain_id)
        assert drain is not None
        return drain.cursor


def _last_line(app: Flask) -> int:
    with app.extensions["berth.database"].session(write=False) as session:
        return store.newest_id(session, session.scalar(select(App.id).where(App.name == "shop")) or "")


def test_a_refusing_drain_loses_the_batch_at_once(app: Flask, api: Api, alice: User,
                                                  partner: ExamplePartner) -> None:
    drain_id = _drain_with_lines(app, api, alice, f"{partner.base}/no-such-path")  # answers 404
    before = _cursor(app, drain_id)
    forwarder = Forwarder(app.extensions["berth.database"], LOOPBACK_ALLOWED)
    assert forwarder.deliver_once() == 0
    assert before < _cursor(app, drain_id) == _last_line(app)  # dropped, not retried


def test_an_unreachable_drain_is_retried_twice_then_skipped(app: Flask, api: Api, alice: User) -> None:
    drain_id = _drain_with_lines(app, api, alice, f"http://127.0.0.1:{free_port()}/drain")
    before = _cursor(app, drain_id)
    forwarder = Forwarder(app.extensions["berth.database"], LOOPBACK_ALLOWED)
    for _ in range(2):
        forwarder.deliver_once()
        assert _cursor(app, drain_id) == before  # kept for a retry
    forwarder.deliver_once()
    assert before < _cursor(app, drain_id) == _last_line(app)
