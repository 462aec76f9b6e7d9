"""The Formation tab: every process type of the current release, scaled and resized through a
CSRF-protected form with the API's rules (a refusal shows the API's message and changes nothing)."""
from __future__ import annotations

from tests.conftest import Api, User
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
