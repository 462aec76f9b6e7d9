"""Every release cut is announced (RELEASE_CREATED) in the transaction that cut it: by the API's
config changes, by app creation, and by the worker when an add-on's config goes live; a failing
listener undoes the change. Releases refer to slugs through a real foreign key."""
from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError

from berth.db import Database, PreparedStatement, utcnow
from berth.errors import Conflict
from berth.hooks import RELEASE_CREATED, Hooks
from berth.platform.apps import get_app
from berth.platform.models import ReleaseStatus, Slug
from berth.platform.releases import CreatedRelease, NewRelease, create_releases, stamp_apps
from tests.api.conftest import register_partner
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner


def listen(app: Flask) -> list[CreatedRelease]:
    seen: list[CreatedRelease] = []
    hooks: Hooks = app.extensions["berth.hooks"]
    hooks.register(RELEASE_CREATED, lambda session, releases: seen.extend(releases))
    return seen


def test_app_creation_and_config_changes_announce_their_releases(app: Flask, api: Api, alice: User) -> None:
    seen = listen(app)
    created = api.post("/apps", alice, json={"name": "shop"}).get_json()
    assert [(r.app_id, r.version, r.status) for r in seen] == [(created["id"], 1, ReleaseStatus.SUCCEEDED)]
    api.patch("/apps/shop/config-vars", alice, json={"GREETING": "hello"})
    assert [r.version for r in seen] == [1, 2]
    listed = {r["version"]: r["id"] for r in api.get("/apps/shop/releases", alice).get_json()}
    assert {r.version: r.id for r in seen} == listed  # the ids announced are the releases' own
    assert all(r.slug_id is None for r in seen)  # config changes carry no slug yet


def test_a_failing_listener_undoes_the_change_that_cut_the_release(app: Flask, api: Api, alice: User) -> None:
    api.post("/apps", alice, json={"name": "shop"})

    def refuse(session: Any, releases: list[CreatedRelease]) -> None:
        raise Conflict("the runner cannot take this release")
    app.extensions["berth.hooks"].register(RELEASE_CREATED, refuse)
    response = api.patch("/apps/shop/config-vars", alice, json={"GREETING": "hello"})
    assert response.status_code == 409
    assert response.get_json()["message"] == "the runner cannot take this release"
    assert api.get("/apps/shop/config-vars", alice).get_json() == {}
    assert [r["version"] for r in api.get("/apps/shop/releases", alice).get_json()] == [1]


def test_the_worker_announces_the_release_an_add_on_cuts(app: Flask, api: Api, alice: User,
                                                         partner: ExamplePartner) -> None:
    worker = register_partner(app, partner)
    api.post("/apps", alice, json={"name": "shop"})
    seen = listen(app)
    assert api.post("/apps/shop/addons", alice, json={"plan": "example-partner"}).status_code == 201
    worker.drain()
    assert [(r.version, r.status) for r in seen] == [(2, ReleaseStatus.SUCCEEDED)]


def test_a_release_may_name_only_a_slug_that_exists(app: Flask, api: Api, alice: User) -> None:
    api.post("/apps", alice, json={"name": "shop"})
    database: Database = app.extensions["berth.database"]
    stamp = PreparedStatement(stamp_apps(1))
    with database.transaction() as session:
        shop = get_app(session, alice.id, "shop")
        slug = Slug(app_id=shop.id, stack="berth-bookworm", process_types={"web": "gunicorn app:app"})
        session.add(slug)
        session.flush()
        now = utcnow()
        stamp.run_in(session, {"now": now, "app_0": shop.id})
        [made] = create_releases(session, [NewRelease(shop.id, 2, "Deploy 1234567", {}, slug_id=slug.id,
                                                      status=ReleaseStatus.PENDING)], now)
        assert (made.slug_id, made.status) == (slug.id, ReleaseStatus.PENDING)
    releases = api.get("/apps/shop/releases", alice).get_json()
    assert [(r["version"], r["status"], r["slug"]) for r in releases] == \
        [(1, "succeeded", None), (2, "pending", {"id": slug.id})]
    assert [r["current"] for r in releases] == [True, False]  # a pending release is not current yet
    # Prepared statements run on the driver's cursor: its own IntegrityError, not SQLAlchemy's.
    with pytest.raises((IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)), \
            database.transaction() as session:
        shop = get_app(session, alice.id, "shop")
        now = utcnow()
        stamp.run_in(session, {"now": now, "app_0": shop.id})
        create_releases(session, [NewRelease(shop.id, 3, "Deploy nothing", {},
                                             slug_id="00000000-0000-4000-8000-000000000000")], now)
