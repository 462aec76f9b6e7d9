"""Slug retention: slugs of the newest 20 releases or of releases younger than 30 days stay; the
others are deleted with their blobs, and their releases become `expired` (no rollback to them)."""
from __future__ import annotations

import io
from datetime import timedelta

from flask import Flask
from sqlalchemy import update

from berth.db import utcnow
from berth.platform import releases
from berth.platform.models import Release, ReleaseStatus, Slug
from berth.platform.slug_retention import SlugRetentionSweep, sweep_slugs
from berth.platform.slug_store import local_store
from tests.api.test_slugs import create_slug, slug_tarball, uploaded_slug
from berth.worker import make_worker
from tests.conftest import Api, User


def test_old_slugs_outside_the_newest_20_releases_are_collected_and_their_releases_expire(
        api: Api, alice: User, app: Flask) -> None:
    assert api.post("/apps", alice, json={"name": "long-lived"}).status_code == 201
    slugs = []
    for n in range(25):
        slug = uploaded_slug(api, alice, "long-lived", f"build-{n}")
        assert api.post("/apps/long-lived/releases", alice, json={"slug": slug["id"]}).status_code == 201
        slugs.append(slug)
    never_released_old = uploaded_slug(api, alice, "long-lived", "old-unreleased")
    never_released_young = create_slug(api, alice, "long-lived")
    releases = {r["slug"]["id"]: r for r in api.get("/apps/long-lived/releases", alice).get_json() if r["slug"]}
    database = app.extensions["berth.database"]
    long_ago = utcnow() - timedelta(days=40)
    with database.transaction() as session:  # everything but the young slug is 40 days old
        session.execute(update(Release).values(created_at=long_ago))
        session.execute(update(Slug).where(Slug.id != never_released_young["id"]).values(created_at=long_ago))
    store = local_store(app.config["BERTH_SETTINGS"].data_dir)

    collected = sweep_slugs(database, store)

    gone = [slug["id"] for slug in slugs[:5]] + [never_released_old["id"]]
    assert sorted(collected.slug_ids) == sorted(gone)
    for slug in slugs[:5]:
        assert not store.exists(slug["checksum"])
        assert api.get(f"/apps/long-lived/slugs/{slug['id']}", alice).status_code == 404
        expired = api.get(f"/apps/long-lived/releases/{releases[slug['id']]['id']}", alice).get_json()
        assert expired["status"] == "expired" and expired["eligible_for_rollback"] is False
    for slug in slugs[5:]:
        assert store.exists(slug["checksum"])
    assert api.get(f"/apps/long-lived/slugs/{never_released_young['id']}", alice).status_code == 200
    refused = api.post("/apps/long-lived/releases", alice, json={"release": releases[slugs[0]["id"]]["id"]})
    assert refused.status_code == 422 and "has expired" in refused.get_json()["message"]
    kept = api.post("/apps/long-lived/releases", alice, json={"release": releases[slugs[5]["id"]]["id"]})
    assert kept.status_code == 201 and kept.get_json()["slug"] == {"id": slugs[5]["id"]}
    assert sweep_slugs(database, store).slug_ids == []  # nothing more to collect


def test_a_young_release_keeps_its_slug_and_a_missing_blob_is_refused_clearly(api: Api, alice: User,
                                                                               app: Flask) -> None:
    assert api.post("/apps", alice, json={"name": "short-lived"}).status_code == 201
    slug = uploaded_slug(api, alice, "short-lived", "only")
    release = api.post("/apps/short-lived/releases", alice, json={"slug": slug["id"]}).get_json()
    database = app.extensions["berth.database"]
    store = local_store(app.config["BERTH_SETTINGS"].data_dir)
    assert sweep_slugs(database, store).slug_ids == []
    store.delete(slug["checksum"])  # lost outside Berth's control
    refused = api.post("/apps/short-lived/releases", alice, json={"release": release["id"]})
    assert refused.status_code == 422 and "no longer stored" in refused.get_json()["message"]


def test_the_current_release_keeps_its_slug_however_old_and_far_back(api: Api, alice: User, app: Flask) -> None:
    assert api.post("/apps", alice, json={"name": "stuck-deploys"}).status_code == 201
    live = uploaded_slug(api, alice, "stuck-deploys", "live")
    assert api.post("/apps/stuck-deploys/releases", alice, json={"slug": live["id"]}).status_code == 201
    broken = uploaded_slug(api, alice, "stuck-deploys", "broken")
    database = app.extensions["berth.database"]
    with database.transaction() as session:  # 21 releases whose release phase failed since
        last = api.get("/apps/stuck-deploys/releases", alice).get_json()[-1]
        releases.create_releases(session, [
            releases.NewRelease(last["app"]["id"], last["version"] + n, "Deploy broken", {}, slug_id=broken["id"],
                                status=ReleaseStatus.FAILED) for n in range(1, 22)], utcnow())
        session.execute(update(Release).values(created_at=utcnow() - timedelta(days=40)))
        session.execute(update(Slug).values(created_at=utcnow() - timedelta(days=40)))
    store = local_store(app.config["BERTH_SETTINGS"].data_dir)
    assert sweep_slugs(database, store).slug_ids == []
    assert store.exists(live["checksum"])
    current = [r for r in api.get("/apps/stuck-deploys/releases", alice).get_json() if r["current"]]
    assert [r["slug"] for r in current] == [{"id": live["id"]}] and current[0]["status"] == "succeeded"


def test_a_blob_no_slug_names_is_deleted_after_a_day_of_grace(app: Flask) -> None:
    # An upload whose record never committed (destroyed apps' blobs go at once: test_app_cleanup.py).
    database = app.extensions["berth.database"]
    store = local_store(app.config["BERTH_SETTINGS"].data_dir)
    checksum = store.put_stream(io.BytesIO(slug_tarball("nobody's")))
    sweep_slugs(database, store)
    assert store.exists(checksum)  # young: an upload may be about to record it
    sweep_slugs(database, store, utcnow() + timedelta(days=2))
    assert not store.exists(checksum)


def test_the_worker_sweeps_slugs_when_it_starts_and_then_hourly(api: Api, alice: User, app: Flask) -> None:
    assert api.post("/apps", alice, json={"name": "swept"}).status_code == 201
    slugs = []
    for n in range(22):
        slugs.append(uploaded_slug(api, alice, "swept", f"build-{n}"))
        assert api.post("/apps/swept/releases", alice, json={"slug": slugs[-1]["id"]}).status_code == 201
    database = app.extensions["berth.database"]

    def age(slug_ids: list[str]) -> None:
        with database.transaction() as session:
            session.execute(update(Release).values(created_at=utcnow() - timedelta(days=40)))
            session.execute(update(Slug).where(Slug.id.in_(slug_ids)).values(created_at=utcnow() - timedelta(days=40)))

    store = local_store(app.config["BERTH_SETTINGS"].data_dir)
    worker = make_worker(database, app.config["BERTH_SETTINGS"])
    sweep = worker.job_type(SlugRetentionSweep.name)
    assert isinstance(sweep, SlugRetentionSweep) and sweep.every == 3600
    now = [1000.0]
    sweep.clock = lambda: now[0]
    age([slugs[0]["id"]])
    worker.start_up()  # the first round runs at start
    assert not store.exists(slugs[0]["checksum"]) and store.exists(slugs[1]["checksum"])
    age([slugs[1]["id"]])
    now[0] += 3599
    worker.sweep()  # within the hour: no round
    assert store.exists(slugs[1]["checksum"])
    now[0] += 2
    worker.sweep()
    assert not store.exists(slugs[1]["checksum"]) and store.exists(slugs[2]["checksum"])
