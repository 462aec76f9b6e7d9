"""Destroying an app removes what it left on disk: its bare repository, build cache, builds'
output files and work directories, and the slug blobs no other app's slug names."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from berth.db import utcnow
from berth.jobs.queue import JobState
from berth.platform.builds.job import cache_dir, work_dir
from berth.platform.builds.output import output_path
from berth.platform.git.repositories import ensure_repository
from berth.platform.models import Build
from berth.platform.slug_store import local_store
from tests.api.test_slugs import uploaded_slug
from tests.conftest import Api, User


def leave_build_files(app: Flask, app_id: str, user_id: str) -> list[Path]:
    """What the builder leaves for one of the app's builds, and the app's repository."""
    data_dir = app.config["BERTH_SETTINGS"].data_dir
    with app.extensions["berth.database"].transaction() as session:
        build = Build(app_id=app_id, user_id=user_id, source_url="http://127.0.0.1:5000/sources/x", buildpacks=[],
                      stack="berth-bookworm", state=JobState.DONE, attempts=1, next_attempt_at=utcnow())
        session.add(build)
        session.flush()
        build_id = build.id
    output = output_path(data_dir, build_id)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("-----> Building on the berth-bookworm stack\n")
    (work_dir(data_dir, build_id) / "app").mkdir(parents=True)
    cache = cache_dir(data_dir, app_id)
    (cache / "pip").mkdir(parents=True)
    (cache / "pip" / "wheel").write_text("cached")
    return [output, work_dir(data_dir, build_id), cache, ensure_repository(data_dir, app_id)]


def test_destroying_an_app_removes_its_files_and_the_slugs_only_it_used(api: Api, alice: User, app: Flask) -> None:
    doomed = api.post("/apps", alice, json={"name": "doomed"}).get_json()
    neighbour = api.post("/apps", alice, json={"name": "neighbour"}).get_json()
    shared = uploaded_slug(api, alice, "doomed", "same code")
    copy = uploaded_slug(api, alice, "neighbour", "same code")  # same tarball: one shared blob
    own = uploaded_slug(api, alice, "doomed", "only doomed runs this")
    assert shared["checksum"] == copy["checksum"] != own["checksum"]
    for name, slug in (("doomed", shared), ("neighbour", copy), ("doomed", own)):
        assert api.post(f"/apps/{name}/releases", alice, json={"slug": slug["id"]}).status_code == 201
    doomed_files = leave_build_files(app, doomed["id"], alice.id)
    neighbour_files = leave_build_files(app, neighbour["id"], alice.id)
    assert all(path.exists() for path in doomed_files + neighbour_files)

    assert api.delete("/apps/doomed", alice).status_code == 200

    assert [path for path in doomed_files if path.exists()] == []
    assert all(path.exists() for path in neighbour_files)
    store = local_store(app.config["BERTH_SETTINGS"].data_dir)
    assert not store.exists(own["checksum"])
    assert store.exists(shared["checksum"])  # the neighbour's slug still names it
    assert api.get("/apps/neighbour", alice).get_json()["slug_size"] == copy["size"]


def test_a_refused_destroy_leaves_every_file(api: Api, alice: User, bob: User, app: Flask) -> None:
    kept = api.post("/apps", alice, json={"name": "kept"}).get_json()
    slug = uploaded_slug(api, alice, "kept", "kept code")
    files = leave_build_files(app, kept["id"], alice.id)
    assert api.post("/apps/kept/collaborators", alice, json={"user": bob.email}).status_code == 201
    refused = api.delete("/apps/kept", bob)  # only the owner may destroy it
    assert refused.status_code == 403
    assert all(path.exists() for path in files)
    assert local_store(app.config["BERTH_SETTINGS"].data_dir).exists(slug["checksum"])
