"""What partners call: the OAuth exchange, their add-on's config and actions, and nothing else."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from berth.broker import partner_auth
from berth.jobs.worker import Worker
from tests.conftest import Api, User
from tests.api.conftest import register_partner
from tests.partners.harness import ExamplePartner


@pytest.fixture
def worker(app: Flask, partner: ExamplePartner) -> Worker:
    return register_partner(app, partner)


def provisioned(api: Api, user: User, app: str, worker: Worker) -> dict[str, Any]:
    api.post("/apps", user, json={"name": app})
    addon = api.post(f"/apps/{app}/addons", user, json={"plan": "example-partner"}).get_json()
    worker.drain()
    return addon


def token_for(api: Api, partner: ExamplePartner, addon_id: str) -> dict[str, Any]:
    grant = partner_auth.mint_grant(addon_id)
    response = api.post(f"/oauth/token?grant_type=authorization_code&code={grant['code']}"
                        f"&client_secret={partner.client_secret}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_grant_exchange_refresh_and_single_use(api: Api, alice: User, worker: Worker,
                                               partner: ExamplePartner) -> None:
    addon = provisioned(api, alice, "shop", worker)
    grant = partner_auth.mint_grant(addon["id"])
    wrong = api.post("/oauth/token", data={"grant_type": "authorization_code", "code": grant["code"],
                                           "client_secret": "not-the-secret"})
    assert wrong.status_code == 401
    form = {"grant_type": "authorization_code", "code": grant["code"], "client_secret": partner.client_secret}
    tokens = api.post("/oauth/token", data=form).get_json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 28800
    again = api.post("/oauth/token", data=form)
    assert again.status_code == 400 and again.get_json()["id"] == "invalid_grant"
    refreshed = api.post("/oauth/token", json={"grant_type": "refresh_token", "client_secret": partner.client_secret,
                                               "refresh_token": tokens["refresh_token"]}).get_json()
    assert refreshed["refresh_token"] == tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert api.get(f"/addons/{addon['id']}", headers=bearer(refreshed["access_token"])).status_code == 200
    assert api.get(f"/addons/{addon['id']}", headers=bearer(tokens["access_token"])).status_code == 401


def test_partner_config_update_is_a_release_on_every_attached_app(api: Api, alice: User, worker: Worker,
                                                                 partner: ExamplePartner) -> None:
    addon = provisioned(api, alice, "shop", worker)
    token = token_for(api, partner, addon["id"])["access_token"]
    items = api.get(f"/addons/{addon['id']}/config", headers=bearer(token)).get_json()
    assert [i["name"] for i in items] == ["EXAMPLE_URL"]
    response = api.patch(f"/addons/{addon['id']}/config", headers=bearer(token),
                         json={"config": [{"name": "EXAMPLE_URL", "value": "https://new.example/x"}]})
    assert response.status_code == 200
    assert api.get("/apps/shop/config-vars", alice).get_json() == {"EXAMPLE_URL": "https://new.example/x"}
    newest = api.get("/apps/shop/releases", alice, headers={"Range": "version ..; order=desc,max=1"}).get_json()[0]
    assert newest["description"] == "Update EXAMPLE by example-partner"
    undeclared = api.patch(f"/addons/{addon['id']}/config", headers=bearer(token),
                           json={"config": [{"name": "OTHER_URL", "value": "x"}]})
    assert undeclared.status_code == 422
    assert api.get("/apps/shop/config-vars", alice).get_json() == {"EXAMPLE_URL": "https://new.example/x"}


def test_a_partner_token_reaches_only_its_own_addon(api: Api, alice: User, bob: User, worker: Worker,
                                                    partner: ExamplePartner) -> None:
    mine = provisioned(api, alice, "shop", worker)
    other = provisioned(api, bob, "elsewhere", worker)
    token = token_for(api, partner, mine["id"])["access_token"]
    assert api.get(f"/addons/{other['id']}", headers=bearer(token)).status_code == 403
    assert api.get(f"/addons/{other['id']}/config", headers=bearer(token)).status_code == 403
    assert api.post(f"/addons/{other['id']}/actions/deprovision", headers=bearer(token)).status_code == 403
    assert api.get("/apps/shop", headers=bearer(token)).get_json()["name"] == "shop"
    assert api.get("/apps/elsewhere", headers=bearer(token)).status_code == 404
    for method, path in (("GET", "/account"), ("GET", "/apps"), ("GET", "/apps/shop/config-vars"),
                         ("PATCH", "/apps/shop/config-vars"), ("DELETE", "/apps/shop"),
                         ("GET", "/addons"), ("POST", "/apps/shop/addons")):
        assert api.request(method, path, headers=bearer(token), json={}).status_code == 401, path
    # And a user's API key is no partner token.
    assert api.patch(f"/addons/{mine['id']}/config", alice, json={"config": []}).status_code == 401


def test_tokens_die_with_the_addon(api: Api, alice: User, worker: Worker, partner: ExamplePartner) -> None:
    addon = provisioned(api, alice, "shop", worker)
    token = token_for(api, partner, addon["id"])["access_token"]
    api.delete(f"/apps/shop/addons/{addon['id']}", alice)
    worker.drain()
    assert api.get(f"/addons/{addon['id']}", headers=bearer(token)).status_code == 401


def test_partner_finishes_an_async_provision(api: Api, alice: User, worker: Worker,
                                             partner: ExamplePartner) -> None:
    partner.set_mode("async", )
    api.post("/apps", alice, json={"name": "shop"})
    addon = api.post("/apps/shop/addons", alice, json={"plan": "example-partner"}).get_json()
    worker.drain()
    assert api.get(f"/addons/{addon['id']}", alice).get_json()["state"] == "provisioning"
    token = token_for(api, partner, addon["id"])["access_token"]
    api.patch(f"/addons/{addon['id']}/config", headers=bearer(token),
              json={"config": [{"name": "EXAMPLE_URL", "value": "https://staged.example/"}]})
    assert api.get("/apps/shop/config-vars", alice).get_json() == {}  # staged, no release yet
    done = api.post(f"/addons/{addon['id']}/actions/provision", headers=bearer(token))
    assert done.status_code == 200 and done.get_json()["state"] == "provisioned"
    assert api.get("/apps/shop/config-vars", alice).get_json() == {"EXAMPLE_URL": "https://staged.example/"}


def test_grant_codes_are_signed_single_use_and_die_with_their_addon(
        api: Api, alice: User, worker: Worker, partner: ExamplePartner) -> None:
    """A code carries its add-on and expiry under Berth's key: forging, re-using, using an older
    code after a newer one, or using one once the add-on is gone all answer invalid_grant."""
    addon = provisioned(api, alice, "shop", worker)
    other = provisioned(api, alice, "depot", worker)

    def exchange(code: str) -> Any:
        return api.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                              "client_secret": partner.client_secret})

    older, newer = partner_auth.mint_grant(addon["id"]), partner_auth.mint_grant(addon["id"])
    body, _, signature = newer["code"].rpartition(".")
    forged = body.replace(addon["id"], other["id"]) + "." + signature  # someone else's add-on
    far_future = ".".join([addon["id"], "9" * 18, "nonce"]) + "." + signature
    for code in (forged, far_future, newer["code"] + "x", ""):
        refused = exchange(code)
        assert refused.status_code == 400 and refused.get_json()["id"] == "invalid_grant", code
    assert exchange(newer["code"]).status_code == 200
    for spent in (newer["code"], older["code"]):  # used, and older than one used
        refused = exchange(spent)
        assert refused.status_code == 400 and refused.get_json()["message"] == partner_auth.INVALID_CODE
    late = partner_auth.mint_grant(other["id"])
    api.delete(f"/apps/depot/addons/{other['id']}", alice)
    worker.drain()
    assert exchange(late["code"]).status_code == 400


def test_unknown_grant_types_and_codes(api: Api) -> None:
    for form in ({"grant_type": "password"}, {"grant_type": "authorization_code", "code": "nope",
                                              "client_secret": "x"}, {}):
        response = api.post("/oauth/token", data=form)
        assert response.status_code == 400 and response.get_json()["id"] == "invalid_grant"
