"""The pages in headless Chromium against a live Berth with its own Postgres add-on: a visitor signs
up, makes an app, finds Postgres in the marketplace, installs it, sees it provisioned and its
DATABASE_URL masked, changes its plan and removes it; a partner publishes a manifest; forged forms
and other people's pages are refused. Screenshots of the main pages go to the artifacts folder."""
from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any, Callable

import psycopg
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.builtin_platform import BuiltinPlatform
from tests.e2e.conftest import PHONE

pytestmark = pytest.mark.slow
PASSWORD = "a long enough password"


def sign_up(page: Page, base: str, email: str) -> None:
    page.goto(base + "/signup")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password, again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your apps")


def create_app(page: Page, base: str, name: str) -> None:
    page.goto(base + "/dashboard")
    page.get_by_label("App name").fill(name)
    page.get_by_role("button", name="Create app").click()
    expect(page).to_have_url(re.compile(f"/dashboard/apps/{name}$"))


def until(page: Page, check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Reload until `check` holds (the page shows a state the worker reaches on its own time)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
        page.reload()


def api_key(page: Page, base: str) -> Callable[..., requests.Response]:
    """A new API key from the account page (shown once), as a JSON API caller."""
    page.goto(base + "/dashboard/account")
    page.get_by_label("Description").fill("e2e checks")
    page.get_by_role("button", name="Create key").click()
    token = page.locator("#new-token").inner_text().strip()
    page.goto(base + "/dashboard/account")  # shown once: not again
    assert token not in page.content()
    return lambda method, path: requests.request(method, base + path, timeout=10, headers={
        "Accept": "application/vnd.heroku+json; version=3", "Authorization": f"Bearer {token}"})


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_install_a_postgres_add_on_from_the_marketplace(platform: BuiltinPlatform, new_page: Any,
                                                         artifacts: Path) -> None:
    base = platform.server.url
    page: Page = new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    email = f"dev-{secrets.token_hex(3)}@example.com"
    sign_up(page, base, email)
    shot(page, artifacts, "dashboard-empty")
    create_app(page, base, "shop-e2e")

    page.get_by_role("link", name="Marketplace").click()
    page.get_by_label("Search").fill("postgres")
    page.get_by_role("button", name="Filter").click()
    shot(page, artifacts, "marketplace-search")
    page.get_by_role("link", name=re.compile("Heroku-style Postgres")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Postgres")
    expect(page.locator("table").first).to_contain_text("Essential 0")
    shot(page, artifacts, "marketplace-service-postgresql")

    page.get_by_label("App", exact=True).select_option("shop-e2e")
    page.get_by_label("Plan", exact=True).select_option("essential-0")
    page.get_by_role("button", name=re.compile("^Install")).click()
    # The status view follows provisioning by itself (progressive JavaScript), no reload needed.
    expect(page.locator("#addon-status [data-state]")).to_have_text("provisioned", timeout=90_000)
    expect(page.locator(".config-var-name")).to_contain_text(["DATABASE_URL"])
    assert "postgres://" not in page.content()
    shot(page, artifacts, "addon-provisioned")
    addon_url = page.url

    # Config vars: masked until asked for, then the real URL.
    page.goto(base + "/dashboard/apps/shop-e2e/settings")
    reveal = page.get_by_role("link", name="Reveal DATABASE_URL")
    expect(reveal).to_be_visible()
    assert "postgres://" not in page.content()
    shot(page, artifacts, "app-settings-masked")
    reveal.click()
    expect(page.locator(".secret")).to_contain_text("postgres://")
    database_url = page.locator(".secret").inner_text().strip()
    with psycopg.connect(database_url, connect_timeout=10) as conn:  # the real database answers
        assert conn.execute("SELECT current_database()").fetchone()[0].startswith("db_")
    api = api_key(page, base)

    # Plan change, followed until the worker applies it.
    page.goto(addon_url)
    page.get_by_label("New plan").select_option("essential-1")
    page.get_by_role("button", name="Change plan").click()
    until(page, lambda: "Essential 1" in page.locator(".facts").first.inner_text(), "the plan change")
    addon_id = api("GET", "/apps/shop-e2e/addons").json()[0]["id"]
    assert api("GET", f"/addons/{addon_id}").json()["plan"]["name"] == "postgresql:essential-1"

    page.goto(base + "/dashboard/apps/shop-e2e")
    shot(page, artifacts, "app-resources")

    # Removal needs the add-on's name typed; a wrong one changes nothing.
    page.goto(addon_url)
    name = page.get_by_role("heading", level=1).inner_text()
    page.get_by_label(re.compile("to confirm")).fill("not-" + name)
    page.get_by_role("button", name=f"Remove {name}").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert api("GET", f"/addons/{addon_id}").status_code == 200
    page.goto(addon_url)
    page.get_by_label(re.compile("to confirm")).fill(name)
    page.get_by_role("button", name=f"Remove {name}").click()
    expect(page).to_have_url(re.compile("/dashboard/apps/shop-e2e$"))
    until(page, lambda: api("GET", f"/addons/{addon_id}").status_code == 404, "the removal")
    until(page, lambda: name not in page.content(), "the resources list to drop the add-on")
    assert "DATABASE_URL" not in api("GET", "/apps/shop-e2e/config-vars").json()
    # Every stylesheet, script and page came from Berth itself: no CDN.
    assert fetched and all(url.startswith(base + "/") for url in fetched), \
        sorted({url for url in fetched if not url.startswith(base + "/")})
    with pytest.raises(psycopg.OperationalError):  # its credentials stopped working
        psycopg.connect(database_url, connect_timeout=5).close()


def test_a_postgres_add_on_page_is_its_dashboard(platform: BuiltinPlatform, new_page: Any,
                                                 artifacts: Path) -> None:
    """No SSO dashboard for Berth's own Postgres: its page shows usage from the provider, the
    credentials behind a reveal, and the backups, one captured here with pg_dump."""
    base = platform.server.url
    page: Page = new_page()
    sign_up(page, base, f"dba-{secrets.token_hex(3)}@example.com")
    create_app(page, base, "ledger-e2e")
    page.goto(base + "/marketplace/postgresql")
    page.get_by_label("App", exact=True).select_option("ledger-e2e")
    page.get_by_label("Plan", exact=True).select_option("essential-0")
    page.get_by_role("button", name=re.compile("^Install")).click()
    expect(page.locator("#addon-status [data-state]")).to_have_text("provisioned", timeout=90_000)
    page.reload()  # the dashboard sections come with the provisioned page

    usage = page.locator("#usage-facts")
    expect(usage).to_contain_text("Available")
    expect(usage).to_contain_text(re.compile(r"[0-9.]+ MB of 1\.0 GB used"))
    expect(page.get_by_role("button", name=re.compile("^Open"))).to_have_count(0)
    expect(page.get_by_text("No backups yet.")).to_be_visible()
    assert "postgres://" not in page.content()

    page.get_by_role("button", name="Capture a backup now").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Backup b001 captured"), timeout=60_000)
    expect(page.locator("table[aria-labelledby=backups]")).to_contain_text("b001")
    expect(usage).to_contain_text("Backups kept1")
    shot(page, artifacts, "addon-postgres-dashboard")

    page.get_by_role("link", name="Reveal DATABASE_URL").click()
    expect(page.locator(".secret")).to_contain_text("postgres://")
    with psycopg.connect(page.locator(".secret").inner_text().strip(), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_partner_publishes_a_manifest_and_finds_it_in_the_catalogue(platform: BuiltinPlatform, new_page: Any,
                                                                       artifacts: Path) -> None:
    base = platform.server.url
    page: Page = new_page()
    sign_up(page, base, f"partner-{secrets.token_hex(3)}@example.com")
    slug = f"acme-search-{secrets.token_hex(2)}"
    manifest = {"id": slug, "name": "Acme Search", "description": "Full-text search for your app's data.",
                "categories": ["Search"],
                "api": {"version": "3", "config_vars_prefix": "ACME", "config_vars": ["ACME_URL"],
                        "password": secrets.token_urlsafe(24), "sso_salt": secrets.token_urlsafe(24),
                        "regions": ["*"], "production": {"base_url": "https://acme.example/heroku/resources",
                                                          "sso_url": "https://acme.example/sso"}},
                "plans": [{"name": "starter", "price": {"cents": 0}, "default": True},
                          {"name": "pro", "price": {"cents": 4900},
                           "features": [{"name": "Indexes", "value": "50"}]}]}
    page.get_by_role("link", name="Partners").click()
    page.get_by_role("link", name=re.compile("Publish")).click()
    page.get_by_label("Manifest (JSON)").fill(json.dumps({**manifest, "plans": [{"name": "x", "price": {}}]}))
    page.get_by_role("button", name=re.compile("Publish")).click()
    expect(page.locator(".error-list")).to_be_visible()  # refused, per field
    shot(page, artifacts, "partner-manifest-errors")
    page.get_by_label("Manifest (JSON)").fill(json.dumps(manifest))
    page.get_by_role("button", name=re.compile("Publish")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Search")
    assert manifest["api"]["password"] not in page.content()
    shot(page, artifacts, "partner-service")

    page.goto(base + "/marketplace?q=acme")
    expect(page.get_by_role("link", name=re.compile("Acme Search"))).to_be_visible()
    page.get_by_role("link", name=re.compile("Acme Search")).first.click()
    expect(page.locator("table").first).to_contain_text("$49")


def test_forged_forms_and_other_peoples_pages_are_refused(platform: BuiltinPlatform, new_page: Any,
                                                          artifacts: Path) -> None:
    base = platform.server.url
    owner: Page = new_page()
    sign_up(owner, base, f"owner-{secrets.token_hex(3)}@example.com")
    app = f"private-{secrets.token_hex(2)}"
    create_app(owner, base, app)

    # A form whose CSRF token was tampered with is refused, and nothing is made.
    owner.goto(base + "/dashboard")
    owner.locator("form:has(#app-name) input[name=csrf_token]").evaluate("input => input.value = 'forged'")
    owner.get_by_label("App name").fill("forged-app")
    owner.get_by_role("button", name="Create app").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("The form expired")
    assert platform.call("GET", "/apps/forged-app").status_code == 404

    # Someone else sees a not-found page for the owner's app and its settings.
    other: Page = new_page()
    sign_up(other, base, f"other-{secrets.token_hex(3)}@example.com")
    for path in (f"/dashboard/apps/{app}", f"/dashboard/apps/{app}/settings"):
        response = other.goto(base + path)
        assert response is not None and response.status == 404
        expect(other.get_by_role("heading", level=1)).to_have_text("Not found")
    shot(other, artifacts, "error-not-found")

    # Signed out, the dashboard asks to sign in.
    stranger: Page = new_page()
    stranger.goto(base + f"/dashboard/apps/{app}")
    expect(stranger).to_have_url(re.compile("/login"))


def test_pages_work_without_javascript_and_at_phone_width(platform: BuiltinPlatform, new_page: Any,
                                                          artifacts: Path) -> None:
    base = platform.server.url
    page: Page = new_page(phone=True, javascript=False)

    def fits(name: str) -> None:
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways at phone width ({width}px)"
        shot(page, artifacts, f"{name}-phone")

    page.goto(base + "/")
    fits("marketplace")
    page.goto(base + "/marketplace/postgresql")
    fits("marketplace-service")
    sign_up(page, base, f"phone-{secrets.token_hex(3)}@example.com")  # plain form posts, no script
    app = f"phone-{secrets.token_hex(2)}"
    create_app(page, base, app)
    fits("app")
    for tab in ("settings", "activity", "access"):
        page.goto(f"{base}/dashboard/apps/{app}/{tab}")
        fits(f"app-{tab}")
    page.goto(base + "/dashboard/account")
    fits("account")
    page.goto(base + "/partners/new")
    fits("partner-new")
