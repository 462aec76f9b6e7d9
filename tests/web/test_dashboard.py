"""The app pages: tabs, access checks, config vars (masked, revealed one at a time, changed
through the API's rules), releases on Activity, collaborators, and the add-on list."""
from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import event, select

from berth.broker import attachments
from berth.broker.models import AddOn, AddonService, Attachment, Plan
from berth.platform.logs import store
from berth.platform.models import App
from tests.conftest import Api, User
from tests.web.conftest import Browser, text

TABS = ["", "/settings", "/activity", "/access", "/formation", "/builds", "/logs"]
SECRET = "s3cr3t-value-do-not-leak"


def _make_app(api: Api, user: User, name: str = "shop", config: dict[str, str] | None = None) -> str:
    assert api.post("/apps", user, json={"name": name}).status_code == 201
    if config:
        assert api.patch(f"/apps/{name}/config-vars", user, json=config).status_code == 200
    return name


def _releases(api: Api, user: User, app: str) -> list[dict[str, object]]:
    answer = api.get(f"/apps/{app}/releases", user)
    assert answer.status_code in (200, 206)
    return answer.get_json()


def _config(api: Api, user: User, app: str) -> dict[str, str]:
    return api.get(f"/apps/{app}/config-vars", user).get_json()


def _add_addons(app: Flask, app_name: str, count: int, *, other_app: str | None = None) -> list[str]:
    """Add-ons on `app_name` (owned by `other_app` and attached here, if given), each injecting
    a var through the broker's own `inject`, as a live attachment does."""
    database = app.extensions["berth.database"]
    names = []
    with database.transaction() as session:
        service = AddonService(name="kv-store", human_name="KV Store", config_vars_prefix="KV",
                               config_vars=["KV_URL"], base_url="https://kv.example", password="pw",
                               sso_url="https://kv.example/sso", sso_salt="salt")  # a dashboard: Open shows
        plan = Plan(service=service, name="small", human_name="Small", cents=0)
        session.add_all([service, plan])
        session.flush()
        here = session.scalars(select(App).where(App.name == app_name)).one()
        owner = session.scalars(select(App).where(App.name == other_app)).one() if other_app else here
        for index in range(count):
            addon = AddOn(name=f"kv-{index:02d}", service_id=service.id, plan_id=plan.id, app_id=owner.id,
                          state="provisioned", region="local", config=f'{{"KV_URL": "kv://{index}"}}')
            session.add(addon)
            session.flush()
            for target in {owner.id, here.id}:
                attachment = Attachment(addon_id=addon.id, app_id=target,
                                        name="KV" if index == 0 else f"KV_{index}")
                session.add(attachment)
                session.flush()
                attachment.addon = addon
                attachments.inject(session, attachment, None, f"Attach {attachment.name}")
            names.append(addon.name)
    return names


# -- every tab ------------------------------------------------------------------------------------

def test_every_tab_renders_for_the_owner_with_one_h1_and_the_tab_marked(api: Api, alice: User,
                                                                          signed_in: Browser) -> None:
    _make_app(api, alice)
    for tab in TABS:
        page = signed_in.get(f"/dashboard/apps/shop{tab}")
        body = text(page)
        assert page.status_code == 200, tab
        assert body.count("<h1") == 1 and ">shop</h1>" in body
        assert body.count('aria-current="page"') == 2  # the breadcrumb and the active tab
        assert 'class="breadcrumbs"' in body


def test_another_users_app_is_a_404_page_on_every_tab(api: Api, alice: User, bob: User, app: Flask) -> None:
    _make_app(api, bob, "bobs-app", {"TOKEN": SECRET})
    visitor = Browser(app)
    visitor.sign_in(alice)
    for tab in TABS:
        page = visitor.get(f"/dashboard/apps/bobs-app{tab}")
        assert page.status_code == 404 and page.mimetype == "text/html", tab
        assert "Couldn&#39;t find that app." in text(page) and SECRET not in text(page)
    assert visitor.get("/dashboard/apps/bobs-app/settings?reveal=TOKEN").status_code == 404


def test_config_posts_to_another_users_app_change_nothing(api: Api, alice: User, bob: User,
                                                          signed_in: Browser) -> None:
    _make_app(api, bob, "bobs-app", {"TOKEN": SECRET})
    before = len(_releases(api, bob, "bobs-app"))
    signed_in.get("/dashboard")
    assert signed_in.submit("/dashboard/apps/bobs-app/settings/config",
                            {"name": "TOKEN", "value": "mine"}).status_code == 404
    assert signed_in.submit("/dashboard/apps/bobs-app/settings/config/remove",
                            {"name": "TOKEN"}).status_code == 404
    assert signed_in.submit("/dashboard/apps/bobs-app/access", {"email": alice.email}).status_code == 404
    assert _config(api, bob, "bobs-app") == {"TOKEN": SECRET}
    assert len(_releases(api, bob, "bobs-app")) == before
    assert [c["role"] for c in api.get("/apps/bobs-app/collaborators", bob).get_json()] == ["owner"]


def test_signed_out_visitors_are_sent_to_sign_in(api: Api, alice: User, browser: Browser) -> None:
    _make_app(api, alice)
    answer = browser.get("/dashboard/apps/shop/settings")
    assert answer.status_code == 302 and "/login?next=/dashboard/apps/shop/settings" in answer.headers["Location"]


# -- config vars -------------------------------------------------------------------------------

def test_values_stay_out_of_the_html_until_one_is_revealed(api: Api, alice: User, signed_in: Browser) -> None:
    _make_app(api, alice, config={"FIRST": "first-secret-value", "SECOND": "second-secret-value"})
    page = text(signed_in.get("/dashboard/apps/shop/settings"))
    assert "FIRST" in page and "SECOND" in page
    assert "first-secret-value" not in page and "second-secret-value" not in page
    assert "••••••••" in page and "?reveal=FIRST" in page
    revealed = text(signed_in.get("/dashboard/apps/shop/settings?reveal=FIRST"))
    assert re.search(r'class="secret"[^>]*>first-secret-value<', revealed)
    assert "second-secret-value" not in revealed


def test_setting_and_removing_a_var_makes_releases_shown_on_activity(api: Api, alice: User,
                                                                    signed_in: Browser) -> None:
    _make_app(api, alice)
    signed_in.get("/dashboard/apps/shop/settings")
    answer = signed_in.submit("/dashboard/apps/shop/settings/config", {"name": "GREETING", "value": "hello"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/dashboard/apps/shop/settings")
    assert "Set GREETING." in text(signed_in.get("/dashboard/apps/shop/settings"))
    assert _config(api, alice, "shop") == {"GREETING": "hello"}
    removed = signed_in.submit("/dashboard/apps/shop/settings/config/remove", {"name": "GREETING"})
    assert removed.status_code == 303 and _config(api, alice, "shop") == {}
    history = _releases(api, alice, "shop")[-2:]
    assert [r["description"] for r in history] == ["Set GREETING config vars", "Remove GREETING config vars"]
    assert all(r["user"]["email"] == alice.email for r in history)  # type: ignore[index]
    activity = text(signed_in.get("/dashboard/apps/shop/activity"))
    assert activity.index("Remove GREETING config vars") < activity.index("Set GREETING config vars")
    newest = history[-1]["version"]
    assert f">v{newest}<" in activity and f">v{newest - 1}<" in activity and alice.email in activity


def test_a_bad_var_name_is_refused_with_the_apis_message(api: Api, alice: User, signed_in: Browser) -> None:
    _make_app(api, alice, config={"KEEP": "kept"})
    before = len(_releases(api, alice, "shop"))
    signed_in.get("/dashboard/apps/shop/settings")
    answer = signed_in.submit("/dashboard/apps/shop/settings/config", {"name": "1-bad", "value": "x"})
    api_answer = api.patch("/apps/shop/config-vars", alice, json={"1-bad": "x"})
    assert answer.status_code == api_answer.status_code == 422
    page = text(answer)
    assert "Invalid config var name &#39;1-bad&#39;" in page and 'value="1-bad"' in page
    assert api_answer.get_json()["message"].replace("'", "&#39;") in page
    assert _config(api, alice, "shop") == {"KEEP": "kept"} and len(_releases(api, alice, "shop")) == before


def test_vars_set_by_an_attachment_are_read_only(app: Flask, api: Api, alice: User, signed_in: Browser) -> None:
    _make_app(api, alice)
    _add_addons(app, "shop", 1)
    page = text(signed_in.get("/dashboard/apps/shop/settings"))
    assert "KV_URL" in page and "kv-00 (attached as KV)" in page and "read-only" in page
    assert 'name="name" value="KV_URL"' not in page  # no remove button for it
    before = len(_releases(api, alice, "shop"))
    for path, form in (("/dashboard/apps/shop/settings/config", {"name": "KV_URL", "value": "mine"}),
                       ("/dashboard/apps/shop/settings/config/remove", {"name": "KV_URL"})):
        refused = signed_in.submit(path, form)
        assert refused.status_code == 409 and "set by an add-on attachment" in text(refused)
    assert _config(api, alice, "shop") == {"KV_URL": "kv://0"}
    assert len(_releases(api, alice, "shop")) == before


def test_config_forms_without_csrf_are_refused(api: Api, alice: User, signed_in: Browser) -> None:
    _make_app(api, alice, config={"KEEP": "kept"})
    for path, form in (("/dashboard/apps/shop/settings/config", {"name": "NEW", "value": "x"}),
                       ("/dashboard/apps/shop/settings/config/remove", {"name": "KEEP"}),
                       ("/dashboard/apps/shop/access", {"email": "bob@example.com"})):
        assert signed_in.submit(path, form, csrf=False).status_code == 400
    assert _config(api, alice, "shop") == {"KEEP": "kept"}


# -- resources ---------------------------------------------------------------------------------

def test_resources_lists_addons_with_manage_and_open(app: Flask, api: Api, alice: User,
                                                      signed_in: Browser) -> None:
    _make_app(api, alice)
    _make_app(api, alice, "other")
    _add_addons(app, "shop", 1, other_app="other")
    page = text(signed_in.get("/dashboard/apps/shop"))
    assert "KV Store" in page and "kv-00" in page and "Small" in page and "from other" in page
    assert "state-provisioned" in page and "other::KV" in page
    assert 'href="/dashboard/apps/shop/addons/kv-00"' in page
    assert 'action="/dashboard/apps/shop/addons/kv-00/open"' in page
    assert "Find more add-ons" in page


def test_attachments_on_apps_the_visitor_cannot_see_are_not_named(app: Flask, api: Api, alice: User,
                                                                    bob: User, signed_in: Browser) -> None:
    _make_app(api, alice)
    _make_app(api, bob, "bobs-app")
    _add_addons(app, "bobs-app", 1, other_app="shop")  # alice's add-on, shared with bob's app
    page = text(signed_in.get("/dashboard/apps/shop"))
    assert "kv-00" in page and "bobs-app" not in page


def test_twenty_addons_render_without_a_query_per_row(app: Flask, api: Api, alice: User,
                                                      signed_in: Browser) -> None:
    _make_app(api, alice)
    _add_addons(app, "shop", 20)
    database = app.extensions["berth.database"]
    engines = database.engines
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        page = signed_in.get("/dashboard/apps/shop")
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert page.status_code == 200 and text(page).count("/open\"") == 20
    addon_queries = [s for s in statements if "FROM addons" in s or "FROM addon_attachments" in s]
    assert 1 <= len(addon_queries) <= 2, addon_queries
    assert len(statements) < 15, statements


# -- access ------------------------------------------------------------------------------------

def test_collaborators_are_added_and_removed_with_the_apis_rules(api: Api, alice: User, bob: User,
                                                                  signed_in: Browser) -> None:
    _make_app(api, alice)
    signed_in.get("/dashboard/apps/shop/access")
    unknown = signed_in.submit("/dashboard/apps/shop/access", {"email": "nobody@example.com"})
    assert unknown.status_code == 404 and "Couldn&#39;t find that user." in text(unknown)
    owner = signed_in.submit("/dashboard/apps/shop/access", {"email": alice.email})
    assert owner.status_code == 422 and "already a collaborator" in text(owner)
    added = signed_in.submit("/dashboard/apps/shop/access", {"email": bob.email})
    assert added.status_code == 303
    page = text(signed_in.get("/dashboard/apps/shop/access"))
    assert bob.email in page and f"Added {bob.email}" in page
    listed = api.get("/apps/shop/collaborators", alice).get_json()
    assert [(c["user"]["email"], c["role"]) for c in listed] == [(alice.email, "owner"), (bob.email, "collaborator")]
    again = signed_in.submit("/dashboard/apps/shop/access", {"email": bob.email})
    assert again.status_code == 422 and "already a collaborator" in text(again)
    collaborator_id = api.get("/apps/shop/collaborators", alice).get_json()[1]["id"]
    removed = signed_in.submit("/dashboard/apps/shop/access/remove", {"user": collaborator_id})
    assert removed.status_code == 303
    assert [c["role"] for c in api.get("/apps/shop/collaborators", alice).get_json()] == ["owner"]


def test_a_collaborator_sees_the_app_but_cannot_share_it(app: Flask, api: Api, alice: User, carol: User) -> None:
    _make_app(api, alice)
    assert api.post("/apps/shop/collaborators", alice, json={"user": carol.email}).status_code == 201
    visitor = Browser(app)
    visitor.sign_in(carol)
    assert visitor.get("/dashboard/apps/shop").status_code == 200
    visitor.get("/dashboard/apps/shop/access")
    refused = visitor.submit("/dashboard/apps/shop/access", {"email": "alice@example.com"})
    assert refused.status_code == 403 and "Only the app owner can add collaborators." in text(refused)


# -- logs --------------------------------------------------------------------------------------

def test_logs_show_the_newest_stored_lines(app: Flask, api: Api, alice: User, signed_in: Browser) -> None:
    app_id = api.post("/apps", alice, json={"name": "shop"}).get_json()["id"]
    with app.extensions["berth.database"].transaction() as session:
        store.append(session, app_id, [store.Entry("app", "web.1", "hello from the app")])
    page = text(signed_in.get("/dashboard/apps/shop/logs"))
    assert "app[web.1]: hello from the app" in page
