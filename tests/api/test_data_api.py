"""The data API's refusals (the live CLI tests in tests/addons/test_heroku_cli_data.py cover the
answers): only the caller's own Postgres and Redis add-ons are described, in Heroku's error shape."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.api.conftest import register_partner
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner

PATHS = ("/client/v11/databases/{}", "/postgres/v0/databases/{}/credentials",
         "/postgres/v0/databases/{}/credentials/default", "/redis/v0/databases/{}")


@pytest.fixture
def other_addon(app: Flask, api: Api, alice: User, partner: ExamplePartner) -> dict[str, Any]:
    worker = register_partner(app, partner)
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    created = api.post("/apps/shop/addons", alice, json={"plan": "example-partner"})
    assert created.status_code == 201
    worker.drain()
    return created.get_json()


def refusal(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) >= {"id", "message"} and body["message"]
    return str(body["message"])


@pytest.mark.parametrize("path", PATHS)
def test_an_addon_of_another_service_is_not_a_database(api: Api, alice: User, other_addon: dict[str, Any],
                                                       path: str) -> None:
    for ref in (other_addon["id"], other_addon["name"]):
        message = refusal(api.get(path.format(ref), alice), 404)
        assert "is a example-partner add-on, not a" in message


@pytest.mark.parametrize("path", PATHS)
def test_unknown_hidden_and_anonymous(api: Api, alice: User, bob: User, other_addon: dict[str, Any],
                                      path: str) -> None:
    assert "Couldn't find that" in refusal(api.get(path.format("no-such-db"), alice), 404)
    assert "Couldn't find that" in refusal(api.get(path.format(other_addon["id"]), bob), 404)
    refusal(api.get(path.format(other_addon["id"])), 401)
