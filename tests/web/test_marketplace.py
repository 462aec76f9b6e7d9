"""The marketplace pages: the catalogue, a service's page, installing an add-on on an app."""
from __future__ import annotations

import copy
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from berth.broker import catalogue
from berth.broker.models import AddOn
from berth.jobs.worker import Worker
from berth.worker import make_worker
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner, run_example_partner
from tests.web.conftest import Browser, text


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplePartner]:
    with run_example_partner(tmp_path_factory.mktemp("partner")) as running:
        yield running


def partner_manifest(partner: ExamplePartner, service_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """The example partner's manifest with categories and plan features, as a real listing has."""
    document = copy.deepcopy(partner.manifest(service_id))
    document["categories"] = ["Monitoring"]
    document["plans"][0]["features"] = [{"name": "Connections", "value": "2"}]
    document["plans"][1]["features"] = [{"name": "Connections", "value": "200"},
                                        {"name": "Backups", "value": "Daily"}]
    document.update(changes)
    return document


def register(app: Flask, document: dict[str, Any]) -> None:
    with app.extensions["berth.database"].transaction() as session:
        catalogue.register_manifest(session, document, owner=None)


@pytest.fixture
def service(app: Flask, partner: ExamplePartner) -> str:
    partner.set_mode("sync")
    register(app, partner_manifest(partner))
    return partner.service


@pytest.fixture
def worker(app: Flask) -> Worker:
    return make_worker(app.extensions["berth.database"], app.config["BERTH_SETTINGS"])


def make_app(api: Api, user: User, name: str) -> str:
    assert api.post("/apps", user, json={"name": name}).status_code == 201
    return name


def addon_count(app: Flask) -> int:
    with app.extensions["berth.database"].session(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(AddOn)) or 0)


def install(visitor: Browser, service: str, app_name: str, **form: str) -> Any:
    visitor.get(f"/marketplace/{service}")
    return visitor.submit(f"/marketplace/{service}/install", {"app": app_name, "plan": "test", **form})


# -- the catalogue ------------------------------------------------------------------------------

def test_catalogue_lists_searches_and_filters(app: Flask, browser: Browser, partner: ExamplePartner,
                                              service: str) -> None:
    register(app, partner_manifest(partner, "vault-store", name="Vault Store", categories=["Data Stores"],
                                   description="Keeps secrets."))
    page = browser.get("/marketplace")
    assert page.status_code == 200
    body = text(page)
    assert "Example Partner" in body and "Vault Store" in body
    assert 'href="/marketplace/example-partner"' in body and "from $0/month" in body
    assert '<option value="Monitoring">' in body and '<option value="Data Stores">' in body
    assert text(browser.get("/")) == body  # signed out, the home page is the marketplace

    searched = text(browser.get("/marketplace?q=EXAMPLE+partner"))
    assert "Example Partner" in searched and "Vault Store" not in searched
    by_description = text(browser.get("/marketplace?q=secrets"))
    assert "Vault Store" in by_description and "Example Partner" not in by_description
    filtered = text(browser.get("/marketplace?category=Data+Stores"))
    assert "Vault Store" in filtered and "Example Partner" not in filtered
    assert '<option value="Data Stores" selected>' in filtered
    nothing = text(browser.get("/marketplace?q=nothing-like-this&category=Monitoring"))
    assert "No add-on services match" in nothing


def test_catalogue_escapes_partner_text(app: Flask, browser: Browser, partner: ExamplePartner) -> None:
    register(app, partner_manifest(partner, "tricky", name="<b>Tricky</b>",
                                   description="<script>alert(1)</script>"))
    for path in ("/marketplace", "/marketplace/tricky", "/marketplace?q=%3Cscript%3E"):
        body = text(browser.get(path))
        assert "<script>alert(1)</script>" not in body and "<b>Tricky</b>" not in body
        assert "&lt;b&gt;Tricky&lt;/b&gt;" in body


def test_catalogue_of_many_services_takes_two_queries(app: Flask, browser: Browser,
                                                      partner: ExamplePartner) -> None:
    for number in range(30):
        register(app, partner_manifest(partner, f"service-{number:03}"))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        page = browser.get("/marketplace")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert page.status_code == 200 and text(page).count('class="card service-card"') == 30
    catalogue_reads = [s for s in statements if "addon_services" in s or "FROM plans" in s]
    assert len(catalogue_reads) <= 2, catalogue_reads


# -- a service's page -----------------------------------------------------------------------------

def test_service_page_shows_plans_config_vars_and_regions(browser: Browser, service: str) -> None:
    page = browser.get(f"/marketplace/{service}")
    body = text(page)
    assert page.status_code == 200
    assert '<th scope="col">Connections</th>' in body and '<th scope="col">Backups</th>' in body
    assert "$15" in body and "$0" in body and "Daily" in body and "200" in body
    assert "EXAMPLE_URL" in body and "Available in every region" in body
    assert "Sign in to install" in body and "/login?next=/marketplace/example-partner" in body
    assert browser.get("/marketplace/no-such-service").status_code == 404


def test_signed_in_user_sees_the_install_form(api: Api, alice: User, signed_in: Browser, service: str) -> None:
    make_app(api, alice, "shop")
    body = text(signed_in.get(f"/marketplace/{service}"))
    assert '<label for="install-app">App</label>' in body and '<option value="shop"' in body
    assert '<option value="test" selected>' in body  # the default plan
    assert 'for="install-attachment"' in body and "Sign in to install" not in body


# -- installing ---------------------------------------------------------------------------------

def test_install_creates_the_addon_and_redirects_to_its_page(app: Flask, api: Api, alice: User,
                                                             signed_in: Browser, service: str,
                                                             worker: Worker) -> None:
    make_app(api, alice, "shop")
    answer = install(signed_in, service, "shop", plan="premium", attachment_name="CACHE")
    assert answer.status_code == 303, text(answer)
    location = answer.headers["Location"]
    assert location.startswith("/dashboard/apps/shop/addons/")
    listed = api.get("/apps/shop/addons", alice).get_json()
    assert len(listed) == 1 and listed[0]["plan"]["name"] == "example-partner:premium"
    assert listed[0]["state"] == "provisioning"  # the page does not wait for the provider
    worker.drain()
    page = text(signed_in.get(location))
    assert "provisioned" in page and "CACHE_URL" in page
    assert "example-partner.invalid" not in page  # names only, never values
    assert api.get("/apps/shop/config-vars", alice).get_json()["CACHE_URL"].startswith("https://")


def test_install_errors_show_the_api_message_and_create_nothing(app: Flask, api: Api, alice: User,
                                                                bob: User, signed_in: Browser,
                                                                service: str, worker: Worker) -> None:
    make_app(api, alice, "shop")
    make_app(api, bob, "bobs-app")
    bad_plan = install(signed_in, service, "shop", plan="gold")
    assert bad_plan.status_code == 404
    assert "Couldn&#39;t find either the add-on service or the add-on plan" in text(bad_plan)
    not_mine = install(signed_in, service, "bobs-app", plan="test")
    assert not_mine.status_code == 404 and "find that app" in text(not_mine)
    assert 'value="bobs-app"' not in text(not_mine)  # bob's apps are not offered either
    no_plan = install(signed_in, service, "shop", plan="")
    assert no_plan.status_code == 422 and "plan" in text(no_plan)
    assert addon_count(app) == 0
    assert install(signed_in, service, "shop", attachment_name="CACHE").status_code == 303
    taken = install(signed_in, service, "shop", attachment_name="CACHE")
    assert 400 <= taken.status_code < 500 and "alert-error" in text(taken)
    assert 'value="CACHE"' in text(taken)  # what was typed stays in the form
    assert addon_count(app) == 1


def test_install_needs_sign_in_and_a_csrf_token(app: Flask, api: Api, alice: User, browser: Browser,
                                                signed_in: Browser, service: str) -> None:
    make_app(api, alice, "shop")
    signed_in.get(f"/marketplace/{service}")
    refused = signed_in.submit(f"/marketplace/{service}/install", {"app": "shop"}, csrf=False)
    assert refused.status_code == 400 and "CSRF" in text(refused)
    browser.get(f"/marketplace/{service}")
    browser.get("/login")
    signed_out = browser.submit(f"/marketplace/{service}/install", {"app": "shop"})
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    assert addon_count(app) == 0
