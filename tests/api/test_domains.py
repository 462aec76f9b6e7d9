"""/apps/{app}/domains: the default domain listed, custom domains added and removed, a host name
another app has or that is no host name refused with 422 and nothing changed."""
from __future__ import annotations

import pytest

from tests.conftest import Api, User


@pytest.fixture
def shop(api: Api, alice: User) -> dict:
    return api.post("/apps", alice, json={"name": "shop"}).get_json()


def hostnames(api: Api, user: User, app: str) -> list[tuple[str, str]]:
    return [(d["hostname"], d["kind"]) for d in api.get(f"/apps/{app}/domains", user).get_json()]


def test_the_default_domain_is_listed(api: Api, alice: User, shop: dict) -> None:
    [default] = api.get("/apps/shop/domains", alice).get_json()
    assert default["hostname"] == "shop.localhost" and default["kind"] == "heroku"
    assert default["app"] == {"id": shop["id"], "name": "shop"}
    assert api.get(f"/apps/shop/domains/{default['id']}", alice).get_json()["hostname"] == "shop.localhost"


def test_a_custom_domain_is_added_shown_and_removed(api: Api, alice: User, shop: dict) -> None:
    added = api.post("/apps/shop/domains", alice, json={"hostname": "WWW.Example.org.", "sni_endpoint": None})
    assert added.status_code == 201
    body = added.get_json()
    assert body["hostname"] == "www.example.org" and body["kind"] == "custom"
    assert body["cname"] == "shop.localhost" and body["status"] == "succeeded" and body["acm_status"] is None
    assert hostnames(api, alice, "shop") == [("shop.localhost", "heroku"), ("www.example.org", "custom")]
    assert api.get(f"/apps/shop/domains/{body['id']}", alice).get_json()["hostname"] == "www.example.org"
    removed = api.delete("/apps/shop/domains/www.example.org", alice)
    assert removed.status_code == 200 and removed.get_json()["id"] == body["id"]
    assert hostnames(api, alice, "shop") == [("shop.localhost", "heroku")]
    assert api.delete("/apps/shop/domains/www.example.org", alice).status_code == 404


def test_a_domain_another_app_has_is_refused(api: Api, alice: User, bob: User, shop: dict) -> None:
    api.post("/apps", bob, json={"name": "rival"})
    assert api.post("/apps/rival/domains", bob, json={"hostname": "www.example.org"}).status_code == 201
    refused = api.post("/apps/shop/domains", alice, json={"hostname": "www.example.org"})
    assert refused.status_code == 422
    assert refused.get_json() == {"id": "invalid_params",
                                  "message": "www.example.org is currently in use by another app."}
    assert hostnames(api, alice, "shop") == [("shop.localhost", "heroku")]
    again = api.post("/apps/rival/domains", bob, json={"hostname": "www.example.org"})
    assert again.status_code == 422 and "already added to rival" in again.get_json()["message"]


@pytest.mark.parametrize("hostname", ["not a host", "-bad.example.org", "example", "a..b.org", "10.0.0.1",
                                      "x" * 64 + ".org", "rival.localhost", "localhost", "*.example.org",
                                      "ex_ample.org", "", "evil.example.org\n."])  # a newline would break the nginx config
def test_not_a_hostname_is_refused(api: Api, alice: User, shop: dict, hostname: str) -> None:
    refused = api.post("/apps/shop/domains", alice, json={"hostname": hostname})
    assert refused.status_code == 422, refused.get_json()
    assert set(refused.get_json()) == {"id", "message"}
    assert hostnames(api, alice, "shop") == [("shop.localhost", "heroku")]


def test_the_default_domain_cannot_be_removed(api: Api, alice: User, shop: dict) -> None:
    refused = api.delete("/apps/shop/domains/shop.localhost", alice)
    assert refused.status_code == 422 and "default domain" in refused.get_json()["message"]


def test_other_peoples_apps_domains_are_not_found(api: Api, bob: User, shop: dict) -> None:
    assert api.get("/apps/shop/domains", bob).status_code in (403, 404)
    assert api.post("/apps/shop/domains", bob, json={"hostname": "evil.example.org"}).status_code in (403, 404)
