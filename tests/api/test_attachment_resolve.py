"""POST /actions/addon-attachments/resolve: how the Heroku CLI's pg and redis commands find a
database (an attachment name, an add-on name, app::name, an id), against a real partner process."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from berth.jobs.worker import Worker
from tests.api.conftest import register_partner
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner

RESOLVE = "/actions/addon-attachments/resolve"


@pytest.fixture
def shop_addon(app: Flask, api: Api, alice: User, partner: ExamplePartner) -> dict[str, Any]:
    worker: Worker = register_partner(app, partner, requires=("attachable",))
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    assert api.post("/apps", alice, json={"name": "reports"}).status_code == 201
    created = api.post("/apps/shop/addons", alice, json={"plan": "example-partner", "name": "shop-db"})
    assert created.status_code == 201, created.get_json()
    worker.drain()
    shared = api.post("/addon-attachments", alice, json={"addon": {"name": "shop-db"}, "app": {"name": "reports"},
                                                         "name": "SHARED"})
    assert shared.status_code == 201, shared.get_json()
    return created.get_json()


def resolve(api: Api, user: User, **body: Any) -> Any:
    return api.post(RESOLVE, user, json=body)


def names(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.get_json()
    return [(a["app"]["name"], a["name"]) for a in response.get_json()]


def test_an_attachment_is_found_by_its_name_on_an_app(api: Api, alice: User, shop_addon: dict[str, Any]) -> None:
    found = resolve(api, alice, addon_attachment="EXAMPLE", app="shop")
    assert names(found) == [("shop", "EXAMPLE")]
    attachment = found.get_json()[0]
    # what the CLI reads from it (Accept-Inclusion: addon:plan,config_vars)
    assert attachment["addon"]["id"] == shop_addon["id"]
    assert attachment["addon"]["plan"]["name"] == "example-partner:test"
    assert attachment["config_vars"] == ["EXAMPLE_URL"] and attachment["namespace"] is None


def test_by_addon_name_app_prefix_and_id(api: Api, alice: User, shop_addon: dict[str, Any]) -> None:
    assert names(resolve(api, alice, addon_attachment="shop-db", app="reports")) == [("reports", "SHARED")]
    assert names(resolve(api, alice, addon_attachment="reports::SHARED")) == [("reports", "SHARED")]
    assert sorted(names(resolve(api, alice, addon_attachment="shop-db"))) == [("reports", "SHARED"),
                                                                             ("shop", "EXAMPLE")]
    one = resolve(api, alice, addon_attachment="SHARED", app="reports").get_json()[0]
    assert names(resolve(api, alice, addon_attachment=one["id"])) == [("reports", "SHARED")]
    assert names(resolve(api, alice, addon_attachment="EXAMPLE", app="shop",
                         addon_service="example-partner")) == [("shop", "EXAMPLE")]


def test_nothing_found_is_the_404_the_cli_falls_back_on(api: Api, alice: User, shop_addon: dict[str, Any]) -> None:
    for body in ({"addon_attachment": "DATABASE_URL", "app": "shop"},  # the CLI's default name
                 {"addon_attachment": "EXAMPLE", "app": "shop", "addon_service": "heroku-redis"},
                 {"addon_attachment": "EXAMPLE"}):  # an attachment name needs its app
        missing = resolve(api, alice, **body)
        assert missing.status_code == 404
        assert missing.get_json()["id"] == "not_found"
        assert missing.get_json()["resource"] == "add_on attachment"


def test_other_peoples_attachments_stay_hidden(api: Api, alice: User, bob: User,
                                               shop_addon: dict[str, Any]) -> None:
    assert resolve(api, bob, addon_attachment="shop-db").status_code == 404
    assert resolve(api, bob, addon_attachment=shop_addon["id"]).status_code == 404
    assert resolve(api, bob, addon_attachment="EXAMPLE", app="shop").get_json()["id"] == "not_found"


def test_bad_input_is_refused_in_herokus_shape(api: Api, alice: User) -> None:
    for body in ({}, {"addon_attachment": ""}, {"addon_attachment": 5}, {"addon_attachment": "x", "extra": 1}):
        refused = resolve(api, alice, **body)
        assert refused.status_code == 422, body
        assert refused.get_json()["id"] == "invalid_params" and refused.get_json()["message"]
