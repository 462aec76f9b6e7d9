"""The partner portal: publish, update and inspect add-on services; rotate their secrets."""
from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from berth.broker import catalogue
from berth.broker.models import AddOn, AddonService
from berth.platform.models import App
from tests.conftest import Api, User
from tests.web.conftest import Browser, text

SECRET = "Zk29QpL7xV4mT8rW-partner-secret"
SALT = "p0Xc7Rr2Lm9Qw4Ev-sso-salt"
SECRET_BLOCK = re.compile(r'<div class="secret"[^>]*><code>([^<]+)</code></div>')


def manifest(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "acme-cache", "name": "Acme Cache", "description": "A fast cache.",
        "api": {"version": "3", "config_vars": ["ACME_CACHE_URL"], "password": SECRET, "sso_salt": SALT,
                "regions": ["*"], "production": {"base_url": "https://acme.example/heroku/resources",
                                                 "sso_url": "https://acme.example/sso"}},
        "plans": [{"name": "pro", "price": {"cents": 2500}},
                  {"name": "free", "price": {"cents": 0}, "default": True}],
    }
    document.update(changes)
    return document


def stored(app: Flask, name: str = "acme-cache") -> AddonService | None:
    with app.extensions["berth.database"].session(write=False) as session:
        service = catalogue.find_service(session, name)
        if service is not None:
            _ = [plan.name for plan in service.plans]  # loaded before the session closes
            session.expunge_all()
        return service


def typed(page: str) -> str:
    """What the manifest textarea holds, as the browser shows it."""
    found = re.search(r'<textarea[^>]*>(.*?)</textarea>', page, re.S)
    assert found is not None
    return html.unescape(found.group(1))


def publish(browser: Browser, document: Any) -> Any:
    browser.get("/partners/new")
    body = document if isinstance(document, str) else json.dumps(document)
    return browser.submit("/partners/new", {"manifest": body})


@pytest.fixture
def published(signed_in: Browser) -> Browser:
    answer = publish(signed_in, manifest())
    assert answer.status_code == 303, text(answer)
    return signed_in


@pytest.fixture
def other(app: Flask, carol: User) -> Browser:
    visitor = Browser(app)
    visitor.sign_in(carol)
    return visitor


def test_publishing_lists_the_service_and_puts_it_in_the_catalogue(app: Flask, api: Api, signed_in: Browser,
                                                                   bob: User) -> None:
    page = text(signed_in.get("/partners/new"))
    assert '<label for="manifest">' in page and "<textarea" in page
    answer = publish(signed_in, manifest())
    assert answer.status_code == 303 and answer.location.endswith("/partners/acme-cache?done=published")
    shown = text(signed_in.get(answer.location))
    assert "published" in shown and "$25.00" in shown and "$0.00" in shown
    assert "https://acme.example/sso" in shown and "ACME_CACHE_URL" in shown
    listing = text(signed_in.get("/partners"))
    assert "Acme Cache" in listing and 'href="/partners/acme-cache"' in listing
    assert api.get("/addon-services/acme-cache", bob).get_json()["human_name"] == "Acme Cache"
    service = stored(app)
    assert service is not None and service.owner_id is not None and service.password == SECRET


def test_invalid_json_is_refused_with_where_and_keeps_the_text(app: Flask, signed_in: Browser) -> None:
    answer = publish(signed_in, '{"id": "acme-cache",\n  "api": }')
    page = text(answer)
    assert answer.status_code == 422 and "not valid JSON" in page and "line 2, column" in page
    assert typed(page) == '{"id": "acme-cache",\n  "api": }'
    assert stored(app) is None


def test_deeply_nested_or_surrogate_manifests_are_refused_with_a_message(app: Flask, signed_in: Browser) -> None:
    for body, said in (("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                       ('{"id": "acme-cache", "extra": ' + "[" * 900 + "]" * 900 + "}", "nested too deeply"),
                       ('{"id": "acme-\\ud800"}', "lone UTF-16 surrogate")):
        answer = publish(signed_in, body)
        page = text(answer)
        assert answer.status_code == 400 and said in page and "The manifest" in page, page[-2000:]
    assert stored(app) is None


def test_a_refused_manifest_lists_each_field_and_creates_nothing(app: Flask, signed_in: Browser) -> None:
    bad = manifest()
    bad["api"]["password"] = "short"
    bad["plans"][0]["price"]["cents"] = -1
    answer = publish(signed_in, bad)
    page = text(answer)
    assert answer.status_code == 422 and "Invalid manifest." in page
    errors = re.search(r'<ul class="error-list".*?</ul>', page, re.S)
    assert errors is not None
    assert "<code>plans.0.price.cents</code>" in errors.group(0)
    assert "<code>api.password</code>: Must be 8 to 72 characters." in errors.group(0)
    assert json.loads(typed(page)) == bad  # the textarea keeps it
    assert stored(app) is None


def test_an_id_someone_else_owns_is_taken(app: Flask, published: Browser, other: Browser) -> None:
    answer = publish(other, manifest())
    assert answer.status_code == 422 and "already taken" in text(answer)
    assert "Acme Cache" not in text(other.get("/partners"))


def test_update_keeps_omitted_secrets_and_changes_plans(app: Flask, published: Browser) -> None:
    page = text(published.get("/partners/acme-cache"))
    assert SECRET not in page and SALT not in page
    document = manifest(plans=[{"name": "free", "price": {"cents": 0}, "default": True},
                               {"name": "gold", "price": {"cents": 9900}}])
    del document["api"]["password"], document["api"]["sso_salt"]
    answer = published.submit("/partners/acme-cache/manifest", {"manifest": json.dumps(document)})
    assert answer.status_code == 303, text(answer)
    service = stored(app)
    assert service is not None and service.password == SECRET and service.sso_salt == SALT
    assert sorted(plan.name for plan in service.plans) == ["free", "gold"]
    assert "$99.00" in text(published.get("/partners/acme-cache"))


def test_update_errors_are_listed_and_change_nothing(app: Flask, published: Browser) -> None:
    published.get("/partners/acme-cache")
    bad = manifest(plans=[{"name": "free", "price": {"cents": 0}}])
    del bad["api"]["password"], bad["api"]["sso_salt"]
    answer = published.submit("/partners/acme-cache/manifest", {"manifest": json.dumps(bad)})
    page = text(answer)
    assert answer.status_code == 422 and "<code>plans</code>" in page and "Exactly one plan" in page
    assert SECRET not in page and SALT not in page
    renamed = published.submit("/partners/acme-cache/manifest", {"manifest": json.dumps(manifest(id="other"))})
    assert renamed.status_code == 422 and "as in the URL" in text(renamed)
    service = stored(app)
    assert service is not None and sorted(plan.name for plan in service.plans) == ["free", "pro"]


def test_the_service_page_prefills_a_manifest_without_secrets_that_pushes_back(app: Flask,
                                                                                published: Browser) -> None:
    page = text(published.get("/partners/acme-cache"))
    assert SECRET not in page and SALT not in page
    service = stored(app)
    assert service is not None and service.client_secret and service.client_secret not in page
    again = published.submit("/partners/acme-cache/manifest", {"manifest": typed(page)})
    assert again.status_code == 303, text(again)
    assert stored(app).password == SECRET  # type: ignore[union-attr]


@pytest.mark.parametrize(("path", "field", "old"), [("rotate-password", "password", SECRET),
                                                    ("rotate-sso-salt", "sso_salt", SALT)])
def test_rotation_shows_the_new_secret_once(app: Flask, published: Browser, path: str, field: str,
                                            old: str) -> None:
    before = stored(app)
    published.get("/partners/acme-cache")
    answer = published.submit(f"/partners/acme-cache/{path}")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    found = SECRET_BLOCK.search(text(answer))
    assert found is not None and "copy it now; configure your service with it" in text(answer)
    after = stored(app)
    assert after is not None and before is not None
    assert getattr(after, field) == found.group(1) != old and len(found.group(1)) >= 40
    assert after.manifest_base == before.manifest_base + 1  # a manifest pulled earlier is stale
    for page in ("/partners", "/partners/acme-cache", "/partners/new"):
        body = text(published.get(page))
        assert found.group(1) not in body and SECRET not in body and SALT not in body
    stale = manifest(**{"$base": before.manifest_base})
    refused = published.submit("/partners/acme-cache/manifest", {"manifest": json.dumps(stale)})
    assert refused.status_code == 422 and "Stale" in text(refused)


def test_other_users_get_not_found_and_change_nothing(app: Flask, published: Browser, other: Browser) -> None:
    before = stored(app)
    other.get("/partners")
    for path in ("/partners/acme-cache", "/partners/nothing"):
        assert other.get(path).status_code == 404
    for action in ("manifest", "rotate-password", "rotate-sso-salt"):
        answer = other.submit(f"/partners/acme-cache/{action}", {"manifest": json.dumps(manifest(plans=[]))})
        assert answer.status_code == 404 and "find that add-on service." in html.unescape(text(answer))
    after = stored(app)
    assert before is not None and after is not None
    assert (after.password, after.sso_salt, after.manifest_base) == (before.password, before.sso_salt,
                                                                    before.manifest_base)
    assert published.get("/partners/nothing").status_code == 404


def test_installs_count_live_addons_only(app: Flask, api: Api, alice: User, published: Browser) -> None:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    with app.extensions["berth.database"].transaction() as session:
        service = catalogue.get_service(session, "acme-cache")
        app_id = session.scalar(select(App.id).where(App.name == "shop"))
        plans = {plan.name: plan.id for plan in service.plans}
        states = [("pro", "provisioned"), ("pro", "provisioning"), ("free", "provisioned"),
                  ("free", "deprovisioning"), ("free", "deprovisioned"), ("pro", "failed")]
        for number, (plan, state) in enumerate(states):
            session.add(AddOn(name=f"acme-{number}", service_id=service.id, plan_id=plans[plan],
                              app_id=app_id, state=state, region="us"))
    listing = text(published.get("/partners"))
    assert re.search(r"<td>2</td>\s*<td>4</td>", listing), listing  # 2 plans, 4 live installs
    page = text(published.get("/partners/acme-cache"))
    assert "data-total-installs>4<" in page
    assert re.search(r"pro</code></th>.*?<td>2</td>\s*</tr>", page, re.S)
    assert re.search(r"free</code></th>.*?<td>2</td>\s*</tr>", page, re.S)


def test_posts_without_csrf_are_refused(app: Flask, published: Browser) -> None:
    before = stored(app)
    answer = published.submit("/partners/acme-cache/rotate-password", csrf=False)
    assert answer.status_code == 400
    created = published.submit("/partners/new", {"manifest": json.dumps(manifest(id="other-cache"))}, csrf=False)
    assert created.status_code == 400 and stored(app, "other-cache") is None
    assert stored(app).password == before.password  # type: ignore[union-attr]


def test_signed_out_visitors_are_sent_to_sign_in(browser: Browser) -> None:
    answer = browser.get("/partners/new")
    assert answer.status_code == 302 and "/login" in answer.location
