"""Dyno sizes and the formation through the Platform API: Heroku's shapes, scaling and resizing,
the limits and bad input (nothing changed), the app[api] log line and the FORMATION_CHANGED hook."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from berth.db import new_id
from berth.hooks import FORMATION_CHANGED, RELEASE_CREATED, RELEASE_CURRENT, hooks_of
from berth.platform import dyno_sizes, formation
from berth.platform.app_manifest import ProcessFormation
from berth.platform.logs.models import LogLine
from berth.platform.models import App, Release, ReleaseStatus, Slug
from berth.platform.releases import CreatedRelease
from tests.api.test_slugs import uploaded_slug
from tests.conftest import Api, User

PROCS = {"web": "gunicorn app:app", "worker": "python worker.py"}


def deploy(api: Api, user: User, app: str, process_types: dict[str, str] = PROCS) -> None:
    slug = uploaded_slug(api, user, app, "code", process_types=process_types)
    made = api.post(f"/apps/{app}/releases", user, json={"slug": slug["id"]})
    assert made.status_code == 201, made.get_json()


@pytest.fixture
def shop(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    return "shop"


def quantities(api: Api, user: User, app: str) -> dict[str, tuple[int, str]]:
    listed = api.get(f"/apps/{app}/formation", user)
    assert listed.status_code == 200, listed.get_json()
    return {entry["type"]: (entry["quantity"], entry["size"]) for entry in listed.get_json()}


def api_lines(api: Api, user: User, app: str) -> list[str]:
    return [line["message"] for line in _log(api, user, app) if line["process"] == "api"]


def _log(api: Api, user: User, app: str) -> list[dict[str, Any]]:
    with api.app.extensions["berth.database"].transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == app))
        return [{"process": row.process, "message": row.message, "source": row.source}
                for row in session.scalars(select(LogLine).where(LogLine.app_id == app_id).order_by(LogLine.id))]


def test_dyno_sizes_are_listed_in_herokus_shape_and_found_by_any_name(api: Api, alice: User) -> None:
    sizes = api.get("/dyno-sizes", alice).get_json()
    names = [size["name"] for size in sizes]
    assert {"Eco", "Basic", "Standard-1X", "Standard-2X", "Performance-M", "Performance-L"} <= set(names)
    one = next(size for size in sizes if size["name"] == "Standard-1X")
    assert set(one) >= {"id", "name", "memory", "compute", "dedicated", "private_space_only", "cost",
                        "dyno_units", "precise_dyno_units"}
    assert one["memory"] == 0.5 and next(s for s in sizes if s["name"] == "Performance-M")["memory"] == 2.5
    for ref in ("standard-2x", "Standard-2X", "2X", next(s["id"] for s in sizes if s["name"] == "Standard-2X")):
        found = api.get(f"/dyno-sizes/{ref}", alice)
        assert found.status_code == 200 and found.get_json()["name"] == "Standard-2X"
    assert api.get("/dyno-sizes/hobby", alice).get_json()["name"] == "Basic"
    missing = api.get("/dyno-sizes/huge", alice)
    assert missing.status_code == 404 and missing.get_json()["id"] == "not_found"


def test_an_apps_available_sizes_are_every_size_and_only_for_those_who_see_it(api: Api, alice: User, bob: User,
                                                                              shop: str) -> None:
    available = api.get(f"/apps/{shop}/available-dyno-sizes", alice)
    assert available.status_code == 200
    assert available.get_json() == api.get("/dyno-sizes", alice).get_json()
    assert api.get(f"/apps/{shop}/available-dyno-sizes", bob).status_code == 404


def test_a_runtime_size_knows_its_memory_and_process_limit() -> None:
    assert dyno_sizes.of_stored(None).memory_bytes == 536870912
    assert dyno_sizes.resolve("standard-2x").memory_bytes == 1073741824
    assert dyno_sizes.resolve("performance-m").memory_bytes == 2684354560
    assert dyno_sizes.resolve("performance-l").memory_bytes == 15032385536
    assert all(size.process_limit > 0 for size in dyno_sizes.SIZES)


def test_an_app_without_code_has_no_formation(api: Api, alice: User, shop: str) -> None:
    assert quantities(api, alice, shop) == {}
    refused = api.patch(f"/apps/{shop}/formation/web", alice, json={"quantity": 1})
    assert refused.status_code == 404 and refused.get_json()["id"] == "not_found"


def test_the_first_deploy_runs_one_web_dyno_and_lists_every_process_type(api: Api, alice: User, shop: str) -> None:
    deploy(api, alice, shop)
    listed = api.get(f"/apps/{shop}/formation", alice).get_json()
    assert [(e["type"], e["quantity"], e["size"], e["command"]) for e in listed] == [
        ("web", 1, "Standard-1X", "gunicorn app:app"), ("worker", 0, "Standard-1X", "python worker.py")]
    web = listed[0]
    assert web["app"]["name"] == shop and web["dyno_size"]["name"] == "Standard-1X"
    assert web["created_at"] and web["updated_at"]
    for ref in ("web", web["id"]):
        assert api.get(f"/apps/{shop}/formation/{ref}", alice).get_json()["id"] == web["id"]
    # The worker has no row yet: it keeps its id once scaled.
    worker_id = listed[1]["id"]
    assert api.patch(f"/apps/{shop}/formation/worker", alice, json={"quantity": 2}).get_json()["id"] == worker_id


def test_a_later_deploy_keeps_what_the_user_scaled(api: Api, alice: User, shop: str) -> None:
    deploy(api, alice, shop)
    assert api.patch(f"/apps/{shop}/formation/web", alice, json={"quantity": 0}).status_code == 200
    deploy(api, alice, shop)
    assert quantities(api, alice, shop)["web"][0] == 0


def test_batch_scaling_is_absolute_relative_and_resizes(app: Flask, api: Api, alice: User, shop: str) -> None:
    deploy(api, alice, shop)
    seen: list[dict[str, int]] = []
    app.extensions["berth.hooks"].register(
        FORMATION_CHANGED, lambda session, app_id, formation: seen.append({e.type: e.quantity for e in formation}))
    answer = api.patch(f"/apps/{shop}/formation", alice, json={"updates": [
        {"type": "web", "quantity": "2"}, {"type": "worker", "quantity": "+1", "size": "standard-2X"}]})
    assert answer.status_code == 200, answer.get_json()
    assert {e["type"]: (e["quantity"], e["size"]) for e in answer.get_json()} == {
        "web": (2, "Standard-1X"), "worker": (1, "Standard-2X")}
    assert seen == [{"web": 2, "worker": 1}]
    assert api_lines(api, alice, shop)[-2:] == ["Scale to web=2, worker=1 by alice@example.com",
                                                "Resize worker to Standard-2X by alice@example.com"]
    assert api.patch(f"/apps/{shop}/formation", alice, json={"updates": [
        {"type": "web", "quantity": "-5"}]}).get_json()[0]["quantity"] == 0  # relative stops at zero
    one = api.patch(f"/apps/{shop}/formation/web", alice, json={"size": "Performance-M", "quantity": 3})
    assert (one.get_json()["quantity"], one.get_json()["size"]) == (3, "Performance-M")
    assert api.patch(f"/apps/{shop}/formation/web", alice, json={"dyno_size": {"name": "hobby"}, "quantity": 1}
                     ).get_json()["size"] == "Basic"
    versions = [r["version"] for r in api.get(f"/apps/{shop}/releases", alice).get_json()]
    assert versions == [1, 2]  # scaling makes no release


@pytest.mark.parametrize("body, status, words", [
    ({"updates": [{"type": "clock", "quantity": 1}]}, 404, "clock"),
    ({"updates": [{"type": "web", "quantity": -1}]}, 422, "0 or more"),
    ({"updates": [{"type": "web", "quantity": "two"}]}, 422, "whole number"),
    ({"updates": [{"type": "web", "quantity": 1.5}]}, 422, "whole number"),
    ({"updates": [{"type": "web", "quantity": True}]}, 422, "whole number"),
    ({"updates": [{"type": "web", "size": "huge"}]}, 422, "standard-1x"),
    ({"updates": [{"type": "web", "quantity": 101}]}, 422, "100"),
    ({"updates": [{"type": "web", "quantity": 60}, {"type": "worker", "quantity": 41}]}, 422, "100 dynos per app"),
    ({"updates": [{"type": "web", "quantity": 11, "size": "performance-l"}]}, 422, "10 Performance-L"),
    ({"updates": [{"type": "web", "quantity": 2, "size": "eco"}]}, 422, "1 Eco"),
    ({"updates": [{"type": "web"}]}, 400, "Nothing to change"),
    ({"updates": [{"type": "../web", "quantity": 1}]}, 422, "type"),
    ({"updates": []}, 422, "updates"),
    ({"updates": [{"type": "web", "quantity": 1, "colour": "red"}]}, 422, "colour"),
    ([1], 400, "JSON object"),
])
def test_bad_scaling_is_refused_in_herokus_shape_and_changes_nothing(api: Api, alice: User, shop: str,
                                                                     body: Any, status: int, words: str) -> None:
    deploy(api, alice, shop)
    before = quantities(api, alice, shop)
    lines_before = api_lines(api, alice, shop)
    # The last good update first: a refused batch must not apply its earlier entries either.
    if isinstance(body, dict) and body["updates"]:
        body = {"updates": [{"type": "worker", "quantity": 1}, *body["updates"]]}
    refused = api.patch(f"/apps/{shop}/formation", alice, json=body)
    assert refused.status_code == status, refused.get_json()
    error = refused.get_json()
    assert set(error) >= {"id", "message"} and words in error["message"]
    assert quantities(api, alice, shop) == before
    assert api_lines(api, alice, shop) == lines_before


def test_another_users_app_cannot_be_scaled(api: Api, alice: User, bob: User, shop: str) -> None:
    deploy(api, alice, shop)
    refused = api.patch(f"/apps/{shop}/formation/web", bob, json={"quantity": 5})
    assert refused.status_code in (403, 404)
    assert quantities(api, alice, shop)["web"][0] == 1


def _slug(session: Any, app_name: str, process_types: dict[str, str]) -> tuple[App, Slug]:
    shop = session.scalar(select(App).where(App.name == app_name))
    slug = Slug(app_id=shop.id, stack="berth-bookworm", process_types=process_types)
    session.add(slug)
    session.flush()
    return shop, slug


def test_a_pending_release_starts_web_only_once_its_release_phase_made_it_current(app: Flask, api: Api,
                                                                                 alice: User, shop: str) -> None:
    database = app.extensions["berth.database"]
    with database.transaction() as session:
        shop_app, slug = _slug(session, shop, PROCS)
        pending = CreatedRelease(new_id(), shop_app.id, 2, ReleaseStatus.PENDING, slug.id)
        hooks_of(session).fire(RELEASE_CREATED, session=session, releases=[pending])
        assert formation.formation_of(session, shop_app) == {}
        hooks_of(session).fire(RELEASE_CURRENT, session=session, release=pending)
        assert {kind: row.quantity for kind, row in formation.formation_of(session, shop_app).items()} == {"web": 1}


def test_app_json_formation_and_code_without_web_are_left_alone(app: Flask, api: Api, alice: User,
                                                                shop: str) -> None:
    database = app.extensions["berth.database"]
    with database.transaction() as session:
        shop_app, _ = _slug(session, shop, PROCS)
        formation.set_missing(session, shop_app, {"web": ProcessFormation(0, "standard-2x")})
    deploy(api, alice, shop)
    assert quantities(api, alice, shop) == {"web": (0, "Standard-2X"), "worker": (0, "Standard-1X")}
    assert api.post("/apps", alice, json={"name": "jobs"}).status_code == 201
    deploy(api, alice, "jobs", {"worker": "python worker.py"})
    assert quantities(api, alice, "jobs") == {"worker": (0, "Standard-1X")}


def test_release_is_the_release_phases_command_not_a_process_type_to_scale(app: Flask, api: Api, alice: User,
                                                                           shop: str) -> None:
    deploy(api, alice, shop, {**PROCS, "release": "python migrate.py"})
    with app.extensions["berth.database"].transaction() as session:  # as if its release phase succeeded
        session.execute(update(Release).where(Release.status == ReleaseStatus.PENDING)
                        .values(status=ReleaseStatus.SUCCEEDED))
    before = quantities(api, alice, shop)
    assert set(before) == {"web", "worker"}
    for refused in (api.patch(f"/apps/{shop}/formation/release", alice, json={"quantity": 1}),
                    api.patch(f"/apps/{shop}/formation", alice, json={"updates": [{"type": "release", "quantity": 1}]})):
        assert refused.status_code == 404, refused.get_json()
        assert "release phase's command" in refused.get_json()["message"] and "cannot be scaled" in refused.get_json()["message"]
    assert quantities(api, alice, shop) == before
