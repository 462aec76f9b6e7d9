"""The Formation tab: every process type of the current release, scaled and resized through a
CSRF-protected form with the API's rules (a refusal shows the API's message and changes nothing)."""
from __future__ import annotations

from datetime import datetime, timezone

from berth.db import Database
from tests.conftest import Api, User
from tests.dyno_api.rows import actions, add_dyno, api_lines
from tests.formation.test_formation_api import deploy, quantities
from tests.web.conftest import Browser, text


def test_the_formation_tab_scales_and_resizes_a_process_type(api: Api, alice: User, signed_in: Browser) -> None:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    empty = signed_in.get("/dashboard/apps/shop/formation")
    assert empty.status_code == 200 and "no process types yet" in text(empty)
    deploy(api, alice, "shop")
    page = text(signed_in.get("/dashboard/apps/shop/formation"))
    assert "gunicorn app:app" in page and "python worker.py" in page and "Performance-M" in page
    done = signed_in.submit("/dashboard/apps/shop/formation/worker", {"quantity": "2", "size": "standard-2x"},
                            follow=True)
    assert done.status_code == 200 and "Scaled worker to 2:Standard-2X." in text(done)
    assert quantities(api, alice, "shop") == {"web": (1, "Standard-1X"), "worker": (2, "Standard-2X")}


def test_refusals_show_the_apis_message_and_change_nothing(api: Api, alice: User, signed_in: Browser) -> None:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    deploy(api, alice, "shop")
    signed_in.get("/dashboard/apps/shop/formation")
    for form, status, words in [({"quantity": "101"}, 422, "Cannot update to more than 100"),
                                ({"quantity": "-1"}, 422, "0 or more"),
                                ({"quantity": "1", "size": "huge"}, 422, "No such dyno size"),
                                ({"quantity": "lots"}, 422, "whole number")]:
        refused = signed_in.submit("/dashboard/apps/shop/formation/web", form)
        assert refused.status_code == status and words in text(refused), form
    missing = signed_in.submit("/dashboard/apps/shop/formation/clock", {"quantity": "1"})
    assert missing.status_code == 404
    forged = signed_in.submit("/dashboard/apps/shop/formation/web", {"quantity": "5"}, csrf=False)
    assert forged.status_code in (400, 403)
    assert quantities(api, alice, "shop") == {"web": (1, "Standard-1X"), "worker": (0, "Standard-1X")}


def test_another_users_formation_is_not_found(api: Api, alice: User, bob: User, browser: Browser) -> None:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    deploy(api, alice, "shop")
    carol = api.make_user("carol@example.com", "another horse battery")
    browser.sign_in(carol)
    assert browser.get("/dashboard/apps/shop/formation").status_code == 404
    assert browser.submit("/dashboard/apps/shop/formation/web", {"quantity": "3"}).status_code == 404
    assert quantities(api, alice, "shop")["web"] == (1, "Standard-1X")


# -- the dynos on the Formation tab: state, since when, Restart per dyno and Restart all ---------------

def _shop_with_dynos(api: Api, alice: User) -> Database:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    deploy(api, alice, "shop")
    database = api.app.extensions["berth.database"]
    add_dyno(database, "shop", "web.1", started=datetime(2026, 12, 7, 15, 0, 0, tzinfo=timezone.utc))
    add_dyno(database, "shop", "worker.1", state="crashed", command="python worker.py",
             started=datetime(2026, 12, 7, 14, 30, 0, tzinfo=timezone.utc))
    return database


def test_the_formation_tab_shows_each_dyno_and_restarts_one_or_all(api: Api, alice: User,
                                                                   signed_in: Browser) -> None:
    database = _shop_with_dynos(api, alice)
    assert api.post("/apps/shop/dynos", alice, json={"command": "sleep 60"}).status_code == 201
    page = text(signed_in.get("/dashboard/apps/shop/formation"))
    for shown in ("web.1", "worker.1", "run.1", "crashed", "2026-12-07 15:00:00 UTC", "2026-12-07 14:30:00 UTC"):
        assert shown in page, shown
    assert 'action="/dashboard/apps/shop/dynos/web.1/restart"' in page
    assert 'action="/dashboard/apps/shop/dynos/worker.1/restart"' in page
    assert 'action="/dashboard/apps/shop/dynos/run.1/stop"' in page  # a one-off is stopped, never restarted
    assert 'action="/dashboard/apps/shop/dynos/restart"' in page
    one = signed_in.submit("/dashboard/apps/shop/dynos/web.1/restart", follow=True)
    assert one.status_code == 200 and "Restarting web.1" in text(one)
    every = signed_in.submit("/dashboard/apps/shop/dynos/restart", follow=True)
    assert every.status_code == 200 and "Restarting all dynos" in text(every)
    stopped = signed_in.submit("/dashboard/apps/shop/dynos/run.1/stop", follow=True)
    assert stopped.status_code == 200 and "Stopping run.1" in text(stopped)
    assert [(a["action"], a["type"], a["name"], a["user_id"]) for a in actions(database, "shop")] == [
        ("restart", "web", "web.1", alice.id), ("restart", None, None, alice.id)]
    assert api_lines(database, "shop")[-3:] == ["Restart web.1 by alice@example.com", "Restart by alice@example.com",
                                                "Stop run.1 by alice@example.com"]
    assert [d["name"] for d in api.get("/apps/shop/dynos", alice).get_json()] == ["web.1", "worker.1"]


def test_a_refused_restart_is_shown_on_the_page_and_records_nothing(api: Api, alice: User,
                                                                   signed_in: Browser) -> None:
    database = _shop_with_dynos(api, alice)
    signed_in.get("/dashboard/apps/shop/formation")
    gone = signed_in.submit("/dashboard/apps/shop/dynos/web.7/restart")
    assert gone.status_code == 404 and "Couldn&#39;t find that dyno (web.7)" in text(gone)
    assert "worker.1" in text(gone)  # the tab itself, with the message
    bad = signed_in.submit("/dashboard/apps/shop/dynos/web.x/restart")
    assert bad.status_code == 422 and "Not a dyno name" in text(bad)
    forged = signed_in.submit("/dashboard/apps/shop/dynos/restart", csrf=False)
    assert forged.status_code in (400, 403)
    assert actions(database, "shop") == []


def test_another_users_dynos_cannot_be_restarted(api: Api, alice: User, browser: Browser) -> None:
    database = _shop_with_dynos(api, alice)
    carol = api.make_user("carol@example.com", "another horse battery")
    browser.sign_in(carol)
    assert browser.submit("/dashboard/apps/shop/dynos/web.1/restart").status_code == 404
    assert browser.submit("/dashboard/apps/shop/dynos/restart").status_code == 404
    assert actions(database, "shop") == []
