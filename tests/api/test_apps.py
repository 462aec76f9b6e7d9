"""Apps: create, list, show, rename, maintenance, destroy, collaborators and access rules."""
from __future__ import annotations

import re

import pytest

from berth.hooks import APP_DESTROYING
from tests.conftest import Api, User

NAME_RULE = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")


def create(api: Api, user: User, **body: object) -> dict:
    response = api.post("/apps", user, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_with_a_name_has_the_fields_the_heroku_cli_reads(api: Api, alice: User) -> None:
    app = create(api, alice, name="my-app-1")
    assert app["name"] == "my-app-1"
    assert app["owner"] == {"id": alice.id, "email": alice.email}
    assert app["stack"]["name"] == app["build_stack"]["name"] == "berth-bookworm"
    assert app["region"]["name"] == "local" and app["create_status"] == "complete"
    assert app["git_url"].endswith("/my-app-1.git") and "my-app-1" in app["web_url"]
    assert app["slug_size"] is None and app["repo_size"] is None and app["maintenance"] is False
    assert app["process_tier"] != "eco" and app["generation"]["name"] == "cedar"


def test_create_without_a_name_generates_a_readable_one(api: Api, alice: User) -> None:
    names = {create(api, alice)["name"] for _ in range(3)}
    assert len(names) == 3
    assert all(NAME_RULE.match(name) and name.count("-") == 2 for name in names)


def test_new_app_has_an_initial_release(api: Api, alice: User) -> None:
    create(api, alice, name="fresh")
    releases = api.get("/apps/fresh/releases", alice).get_json()
    assert [(r["version"], r["description"], r["current"]) for r in releases] == [(1, "Initial release", True)]


@pytest.mark.parametrize("name", ["ab", "A-app", "1app", "app-", "a" * 31, "my_app", "app.x", "ünï", "x'; --"])
def test_invalid_names_are_422(api: Api, alice: User, name: str) -> None:
    response = api.post("/apps", alice, json={"name": name})
    assert response.status_code == 422 and response.get_json()["id"] == "invalid_params"
    assert api.get("/apps", alice).get_json() == []


def test_duplicate_name_is_422_name_is_already_taken(api: Api, alice: User, bob: User) -> None:
    create(api, alice, name="taken")
    response = api.post("/apps", bob, json={"name": "taken"})
    assert response.status_code == 422 and "Name is already taken" in response.get_json()["message"]
    assert api.get("/apps", bob).get_json() == []


def test_unknown_stack_or_region_is_422(api: Api, alice: User) -> None:
    assert api.post("/apps", alice, json={"stack": "cedar-99"}).status_code == 422
    assert api.post("/apps", alice, json={"region": "mars"}).status_code == 422
    assert create(api, alice, stack={"name": "heroku-24"}, region="local")["stack"]["name"] == "berth-bookworm"


def test_lookup_by_name_or_uuid(api: Api, alice: User) -> None:
    app = create(api, alice, name="lookup")
    assert api.get(f"/apps/{app['id']}", alice).get_json()["name"] == "lookup"
    assert api.get(f"/apps/{app['id'].upper()}", alice).get_json()["name"] == "lookup"
    assert api.get("/apps/lookup", alice).get_json()["id"] == app["id"]


def test_rename_and_maintenance(api: Api, alice: User) -> None:
    app = create(api, alice, name="before")
    response = api.patch("/apps/before", alice, json={"name": "after", "maintenance": True})
    assert response.status_code == 200
    assert response.get_json()["name"] == "after" and response.get_json()["maintenance"] is True
    assert api.get("/apps/before", alice).status_code == 404
    assert api.get(f"/apps/{app['id']}", alice).get_json()["name"] == "after"


def test_rename_to_a_taken_or_invalid_name_changes_nothing(api: Api, alice: User) -> None:
    create(api, alice, name="one")
    create(api, alice, name="two")
    response = api.patch("/apps/one", alice, json={"name": "two", "maintenance": True})
    assert response.status_code == 422 and "Name is already taken" in response.get_json()["message"]
    assert api.patch("/apps/one", alice, json={"name": "Bad Name"}).status_code == 422
    assert api.get("/apps/one", alice).get_json()["maintenance"] is False


def test_destroy_removes_the_app_its_config_and_releases(api: Api, alice: User) -> None:
    app = create(api, alice, name="doomed")
    api.patch("/apps/doomed/config-vars", alice, json={"SECRET": "s"})
    response = api.delete("/apps/doomed", alice)
    assert response.status_code == 200 and response.get_json()["id"] == app["id"]
    assert api.get("/apps/doomed", alice).status_code == 404
    assert api.get(f"/apps/{app['id']}/releases", alice).status_code == 404
    create(api, alice, name="doomed")  # the name is free again, with a fresh history
    assert len(api.get("/apps/doomed/releases", alice).get_json()) == 1


def test_destroy_announces_itself_to_hook_listeners(api: Api, alice: User) -> None:
    seen: list[str] = []
    api.app.extensions["berth.hooks"].register(APP_DESTROYING, lambda session, app: seen.append(app.name))
    create(api, alice, name="hooked")
    api.delete("/apps/hooked", alice)
    assert seen == ["hooked"]


def test_failing_hook_listener_aborts_the_destroy(api: Api, alice: User) -> None:
    def refuse(session: object, app: object) -> None:
        from berth.errors import Conflict
        raise Conflict("add-ons are still being provisioned")
    api.app.extensions["berth.hooks"].register(APP_DESTROYING, refuse)
    create(api, alice, name="kept")
    response = api.delete("/apps/kept", alice)
    assert response.status_code == 409
    assert api.get("/apps/kept", alice).status_code == 200


def test_other_users_apps_look_exactly_like_missing_ones(api: Api, alice: User, bob: User) -> None:
    app = create(api, alice, name="private")
    missing = api.get("/apps/no-such-app", bob)
    for path in ("/apps/private", f"/apps/{app['id']}", "/apps/private/config-vars",
                 "/apps/private/releases", "/apps/private/collaborators"):
        response = api.get(path, bob)
        assert response.status_code == 404 and response.get_json() == missing.get_json(), path
    assert api.patch("/apps/private", bob, json={"maintenance": True}).get_json() == missing.get_json()
    assert api.patch("/apps/private/config-vars", bob, json={"X": "1"}).status_code == 404
    assert api.delete("/apps/private", bob).get_json() == missing.get_json()
    assert api.get("/apps", bob).get_json() == []
    assert api.get("/apps/private/config-vars", alice).get_json() == {}


def test_collaborators_see_and_configure_but_cannot_rename_or_destroy(api: Api, alice: User, bob: User) -> None:
    create(api, alice, name="shared")
    response = api.post("/apps/shared/collaborators", alice, json={"user": bob.email, "silent": False})
    assert response.status_code == 201 and response.get_json()["user"]["email"] == bob.email
    assert [a["name"] for a in api.get("/users/~/apps", bob).get_json()] == ["shared"]
    assert api.patch("/apps/shared/config-vars", bob, json={"FROM_BOB": "1"}).status_code == 200
    release = api.get("/apps/shared/releases/2", alice).get_json()
    assert release["user"]["email"] == bob.email and release["description"] == "Set FROM_BOB config vars"
    assert api.patch("/apps/shared", bob, json={"name": "stolen"}).status_code == 403
    assert api.delete("/apps/shared", bob).status_code == 403
    assert api.get("/apps/shared", alice).status_code == 200


def test_collaborator_listing_removal_and_errors(api: Api, alice: User, bob: User) -> None:
    create(api, alice, name="team-app")
    carol = api.make_user("carol@example.com")
    assert api.post("/apps/team-app/collaborators", alice, json={"user": {"email": bob.email}}).status_code == 201
    assert api.post("/apps/team-app/collaborators", alice, json={"user": bob.email}).status_code == 422
    assert api.post("/apps/team-app/collaborators", alice, json={"user": alice.email}).status_code == 422
    assert api.post("/apps/team-app/collaborators", alice, json={"user": "ghost@example.com"}).status_code == 404
    assert api.post("/apps/team-app/collaborators", bob, json={"user": carol.email}).status_code == 403
    assert api.post("/apps/team-app/collaborators", alice, json={}).status_code == 422
    listed = api.get("/apps/team-app/collaborators", alice).get_json()
    # Heroku lists the owner first, with role "owner" (what `heroku access` shows).
    assert [(c["user"]["email"], c["role"]) for c in listed] == [(alice.email, "owner"), (bob.email, "collaborator")]
    assert api.delete(f"/apps/team-app/collaborators/{bob.email}", alice).status_code == 200
    assert api.get("/apps/team-app", bob).status_code == 404


def test_a_collaborator_may_leave(api: Api, alice: User, bob: User) -> None:
    create(api, alice, name="leaving")
    api.post("/apps/leaving/collaborators", alice, json={"user": bob.id})
    assert api.delete(f"/apps/leaving/collaborators/{bob.id}", bob).status_code == 200
    assert api.get("/apps/leaving", bob).status_code == 404


def test_apps_list_includes_owned_and_collaborated(api: Api, alice: User, bob: User) -> None:
    create(api, alice, name="alices")
    create(api, bob, name="bobs")
    api.post("/apps/bobs/collaborators", bob, json={"user": alice.email})
    assert sorted(a["name"] for a in api.get("/apps", alice).get_json()) == ["alices", "bobs"]
    assert sorted(a["name"] for a in api.get("/users/~/apps", alice).get_json()) == ["alices", "bobs"]
    assert api.get(f"/users/{bob.email}/apps", alice).status_code == 404
