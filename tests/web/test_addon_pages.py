"""An add-on's page: following provisioning, the status endpoint, plan change, removal, SSO,
and ownership (another user's add-on is a 404 page)."""
from __future__ import annotations

import html
import re
from typing import Iterator

import pytest
import requests
from flask import Flask

from berth.jobs.worker import Worker
from berth.worker import make_worker
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner, run_example_partner
from tests.web.conftest import Browser, text
from tests.web.test_marketplace import addon_count, install, make_app, partner_manifest, register

HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplePartner]:
    with run_example_partner(tmp_path_factory.mktemp("partner")) as running:
        yield running


@pytest.fixture
def worker(app: Flask, partner: ExamplePartner) -> Worker:
    partner.set_mode("sync")
    register(app, partner_manifest(partner))
    return make_worker(app.extensions["berth.database"], app.config["BERTH_SETTINGS"])


@pytest.fixture
def page(api: Api, alice: User, signed_in: Browser, worker: Worker) -> str:
    """Alice's app `shop` with an example add-on, not yet provisioned: its page's path."""
    make_app(api, alice, "shop")
    answer = install(signed_in, "example-partner", "shop")
    assert answer.status_code == 303, text(answer)
    return answer.headers["Location"]


@pytest.fixture
def other(app: Flask, api: Api) -> Browser:
    """Bob, signed in: he has an app of his own but no access to alice's."""
    bob = api.make_user("bob@example.com", "another long password")
    make_app(api, bob, "bobs-app")
    visitor = Browser(app)
    visitor.sign_in(bob)
    return visitor


def addon_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[1]


def test_page_follows_provisioning_then_shows_var_names_only(api: Api, alice: User, signed_in: Browser,
                                                             worker: Worker, page: str) -> None:
    busy = text(signed_in.get(page))
    assert 'state-provisioning' in busy and 'aria-live="polite"' in busy
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in busy
    assert "/static/provisioning.js" in busy and f'data-status-url="{page}/status"' in busy
    assert signed_in.get(f"{page}/status").get_json() == {"state": "provisioning", "failure_message": None}

    worker.drain()
    done = signed_in.get(page)
    body = text(done)
    assert done.status_code == 200 and "state-provisioned" in body and "Example Partner" in body
    assert 'http-equiv="refresh"' not in body and "provisioning.js" not in body
    assert "EXAMPLE_URL" in body and '<th scope="row"><code>EXAMPLE</code></th>' in body
    value = api.get("/apps/shop/config-vars", alice).get_json()["EXAMPLE_URL"]
    assert value not in body and "example-partner.invalid" not in body
    assert signed_in.get(f"{page}/status").get_json() == {"state": "provisioned", "failure_message": None}


def test_failed_provision_shows_why(signed_in: Browser, worker: Worker, partner: ExamplePartner,
                                    page: str) -> None:
    partner.set_mode("refusing")
    worker.drain()
    body = text(signed_in.get(page))
    assert "state-failed" in body and "That plan is not available in your region." in body
    assert signed_in.get(f"{page}/status").get_json()["state"] == "failed"


def test_scripts_are_served(browser: Browser) -> None:
    for name in ("provisioning.js", "sso.js"):
        answer = browser.get(f"/static/{name}")
        assert answer.status_code == 200 and "javascript" in answer.content_type
        answer.close()


def test_plan_change_and_its_errors(api: Api, alice: User, signed_in: Browser, worker: Worker,
                                    partner: ExamplePartner, page: str) -> None:
    early = signed_in.submit(f"{page}/plan", {"plan": "premium"})
    assert early.status_code == 409 and "once it is provisioned" in text(early)
    worker.drain()
    signed_in.get(page)
    bad = signed_in.submit(f"{page}/plan", {"plan": "gold"})
    assert bad.status_code == 422
    assert "Couldn't find either the add-on service or the add-on plan 'gold'." in html.unescape(text(bad))
    changed = signed_in.submit(f"{page}/plan", {"plan": "premium"})
    assert changed.status_code == 303 and changed.headers["Location"] == page
    assert "plan change has been requested" in text(signed_in.get(page))
    worker.drain()
    addon = api.get(f"/apps/shop/addons/{addon_name(page)}", alice).get_json()
    assert addon["plan"]["name"] == "example-partner:premium" and partner.calls("plan_change") >= 1
    body = text(signed_in.get(page))
    assert '<option value="premium" selected>' in body and "Premium" in body


def test_remove_needs_the_typed_name(app: Flask, api: Api, alice: User, signed_in: Browser, worker: Worker,
                                     page: str) -> None:
    worker.drain()
    name = addon_name(page)
    signed_in.get(page)
    for typed in ("", "not-it", "<script>alert(1)</script>"):
        refused = signed_in.submit(f"{page}/remove", {"confirm": typed})
        assert refused.status_code == 422 and f"type its name {name} exactly" in text(refused)
        assert "<script>alert(1)</script>" not in text(refused)
    no_token = signed_in.submit(f"{page}/remove", {"confirm": name}, csrf=False)
    assert no_token.status_code == 400
    assert api.get(f"/apps/shop/addons/{name}", alice).get_json()["state"] == "provisioned"

    removed = signed_in.submit(f"{page}/remove", {"confirm": name})
    assert removed.status_code == 303 and removed.headers["Location"] == "/dashboard/apps/shop"
    assert api.get("/apps/shop/addons", alice).get_json()[0]["state"] == "deprovisioning"
    assert "EXAMPLE_URL" not in api.get("/apps/shop/config-vars", alice).get_json()  # detached at once
    worker.drain()
    assert api.get("/apps/shop/addons", alice).get_json() == []
    assert signed_in.get(page).status_code == 404 and addon_count(app) == 1  # kept as a record


def test_open_posts_the_sso_form_to_the_partner(signed_in: Browser, worker: Worker, partner: ExamplePartner,
                                                page: str) -> None:
    signed_in.get(page)
    too_early = signed_in.submit(f"{page}/open")
    assert too_early.status_code == 409 and "has no dashboard to open while it is provisioning" in text(too_early)
    worker.drain()
    assert f'action="{page}/open"' in text(signed_in.get(page))
    opened = signed_in.submit(f"{page}/open")
    body = text(opened)
    assert opened.status_code == 200 and "Continue to Example Partner" in body and "/static/sso.js" in body
    assert f'action="{partner.sso_url}"' in body and 'method="post"' in body
    # The form leaves the site (and the partner may redirect anywhere): no form-action there,
    # the rest of the policy stays.
    policy = opened.headers["Content-Security-Policy"]
    assert "form-action" not in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "form-action 'self'" in signed_in.get(page).headers["Content-Security-Policy"]
    sso_form = body.split('id="sso-form"', 1)[1].split("</form>", 1)[0]
    fields = {name: html.unescape(value) for name, value in HIDDEN_FIELD.findall(sso_form)}
    assert {"resource_id", "resource_token", "timestamp", "email"} <= set(fields) and "csrf_token" not in fields
    answer = requests.post(partner.sso_url, data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and "/dashboard/" in answer.headers["Location"]


def test_another_user_gets_404_pages_and_changes_nothing(api: Api, alice: User, signed_in: Browser,
                                                         other: Browser, worker: Worker, page: str) -> None:
    worker.drain()
    name = addon_name(page)
    for path in (page, f"/dashboard/apps/bobs-app/addons/{name}", "/dashboard/apps/shop/addons/EXAMPLE"):
        answer = other.get(path)
        assert answer.status_code == 404 and "example-partner" not in text(answer).lower()
    status = other.get(f"{page}/status")
    assert status.status_code == 404 and status.get_json()["id"] == "not_found"
    other.get("/dashboard")
    for action, form in (("plan", {"plan": "premium"}), ("remove", {"confirm": name}), ("open", {})):
        answer = other.submit(f"{page}/{action}", form)
        assert answer.status_code == 404, action
    stolen = install(other, "example-partner", "shop")
    assert stolen.status_code == 404 and "find that app" in text(stolen)
    addon = api.get(f"/apps/shop/addons/{name}", alice).get_json()
    assert addon["state"] == "provisioned" and addon["plan"]["name"] == "example-partner:test"
    assert len(api.get("/apps/shop/addons", alice).get_json()) == 1


def test_signed_out_visitors_are_sent_to_sign_in(browser: Browser, page: str) -> None:
    answer = browser.get(page)
    assert answer.status_code == 302 and "/login?next=" in answer.headers["Location"]
    assert browser.get(f"{page}/status").status_code == 302
