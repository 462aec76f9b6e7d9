"""A plan change the provider refuses shows on the add-on's page (the page does not wait for the
provider's answer: it shows it once the worker has it)."""
from __future__ import annotations

import html
from typing import Iterator

import pytest
from flask import Flask

from berth.worker import make_worker
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner, run_example_partner
from tests.web.conftest import Browser, text
from tests.web.test_marketplace import install, make_app, partner_manifest, register


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplePartner]:
    with run_example_partner(tmp_path_factory.mktemp("partner")) as running:
        yield running


def test_a_refused_plan_change_is_shown_on_the_page(app: Flask, api: Api, alice: User, signed_in: Browser,
                                                    partner: ExamplePartner) -> None:
    partner.set_mode("sync")
    register(app, partner_manifest(partner))
    worker = make_worker(app.extensions["berth.database"], app.config["BERTH_SETTINGS"])
    make_app(api, alice, "shop")
    page = install(signed_in, "example-partner", "shop").headers["Location"]
    worker.drain()
    signed_in.get(page)
    partner.set_mode("refusing")
    assert signed_in.submit(f"{page}/plan", {"plan": "premium"}).status_code == 303
    worker.drain()
    body = html.unescape(text(signed_in.get(page)))
    assert "Plan change failed:" in body and "That plan is not available in your region." in body
    assert "it stays on example-partner:test" in body
