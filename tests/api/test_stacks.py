"""The app's stack: Berth's own (berth-bookworm), with Heroku's stack names as aliases; and what
GET /apps/{app} says about its code (slug_size, buildpack_provided_description, repo_size)."""
from __future__ import annotations

import subprocess

from flask import Flask
from sqlalchemy import update

from berth.platform.git.repositories import ensure_repository
from berth.platform.models import App
from berth.platform.stacks import stack_id
from tests.api.test_slugs import slug_tarball, uploaded_slug
from tests.conftest import Api, User

STACK = "berth-bookworm"


def test_stacks_lists_berths_stack_and_names_it_by_alias_or_id(api: Api, alice: User) -> None:
    listed = api.get("/stacks", alice)
    assert listed.status_code == 200
    [stack] = listed.get_json()
    assert stack["name"] == STACK and stack["id"] == stack_id(STACK) and stack["state"] == "public"
    assert stack["default"] is True and stack["created_at"]
    for ref in (STACK, stack["id"], "heroku-24", "cedar"):
        assert api.get(f"/stacks/{ref}", alice).get_json() == stack
    missing = api.get("/stacks/windows-95", alice)
    assert missing.status_code == 404 and missing.get_json()["id"] == "not_found"
    assert "stack" in missing.get_json()["message"]


def test_every_name_clients_send_means_the_stack_and_an_unknown_one_changes_nothing(api: Api, alice: User) -> None:
    # `heroku create` sends none; heroku3 sends cedar; app.json and stack:set name heroku-24.
    for number, stack in enumerate([None, "cedar", "heroku-24", {"name": "heroku-22"}, STACK, stack_id(STACK),
                                    {"id": stack_id("heroku-24")}]):
        body = {"name": f"stacked-{number}"} if stack is None else {"name": f"stacked-{number}", "stack": stack}
        created = api.post("/apps", alice, json=body)
        assert created.status_code == 201, (stack, created.get_json())
        app = created.get_json()
        assert app["stack"] == app["build_stack"] == {"id": stack_id(STACK), "name": STACK}
    refused = api.patch("/apps/stacked-0", alice, json={"build_stack": "heroku-99"})
    assert refused.status_code == 422 and STACK in refused.get_json()["message"]
    assert api.get("/apps/stacked-0", alice).get_json()["build_stack"]["name"] == STACK
    assert api.patch("/apps/stacked-0", alice, json={"build_stack": "heroku-24"}).get_json()["build_stack"]["name"] == STACK


def test_an_app_stored_with_herokus_name_reports_berths_stack(api: Api, alice: User, app: Flask) -> None:
    api.post("/apps", alice, json={"name": "older"})
    with app.extensions["berth.database"].transaction() as session:
        session.execute(update(App).where(App.name == "older").values(stack="heroku-24", build_stack="heroku-24"))
    shown = api.get("/apps/older", alice).get_json()
    assert shown["stack"]["name"] == shown["build_stack"]["name"] == STACK


def test_app_reports_the_current_slugs_size_and_description_and_its_repositorys_size(
        api: Api, alice: User, app: Flask) -> None:
    created = api.post("/apps", alice, json={"name": "sized"}).get_json()
    fresh = api.get("/apps/sized", alice).get_json()
    assert fresh["slug_size"] is None and fresh["repo_size"] is None and fresh["buildpack_provided_description"] is None
    first = uploaded_slug(api, alice, "sized", "one", buildpack_provided_description="Python")
    assert api.post("/apps/sized/releases", alice, json={"slug": first["id"]}).status_code == 201
    shown = api.get("/apps/sized", alice).get_json()
    assert shown["slug_size"] == first["size"] == len(slug_tarball("one"))
    assert shown["buildpack_provided_description"] == "Python"
    second = uploaded_slug(api, alice, "sized", "a longer marker than one", buildpack_provided_description="Node.js")
    assert api.post("/apps/sized/releases", alice, json={"slug": second["id"]}).status_code == 201
    listed = {a["name"]: a for a in api.get("/apps", alice).get_json()}
    assert listed["sized"]["slug_size"] == second["size"] != first["size"]
    assert listed["sized"]["buildpack_provided_description"] == "Node.js"
    rolled = api.post("/apps/sized/releases", alice, json={"release": "v2"})  # the first slug again
    assert rolled.status_code == 201, rolled.get_json()
    assert api.get("/apps/sized", alice).get_json()["slug_size"] == first["size"]
    data_dir = app.config["BERTH_SETTINGS"].data_dir
    repository = ensure_repository(data_dir, created["id"])
    on_disk = int(subprocess.run(["du", "-s", "-b", "--apparent-size", str(repository)], capture_output=True,
                                 text=True, check=True).stdout.split()[0])
    reported = api.get("/apps/sized", alice).get_json()["repo_size"]
    assert 0 < reported <= on_disk
