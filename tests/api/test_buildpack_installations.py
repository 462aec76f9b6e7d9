"""GET/PUT /apps/{app}/buildpack-installations (Platform API §2.12), as the Heroku CLI sends them."""
from __future__ import annotations

import pytest

from berth.config import Settings
from tests.conftest import Api, User


@pytest.fixture
def app_name(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "packed"}).status_code == 201
    return "packed"


def put(api: Api, user: User, app: str, body: object):
    return api.request("PUT", f"/apps/{app}/buildpack-installations", user, json=body, headers={"Range": ""})


def installed(api: Api, user: User, app: str) -> list[dict]:
    response = api.get(f"/apps/{app}/buildpack-installations", user)
    assert response.status_code == 200
    return response.get_json()


def test_set_add_and_clear_keep_the_order_given(api: Api, alice: User, app_name: str) -> None:
    assert installed(api, alice, app_name) == []
    response = put(api, alice, app_name, {"updates": [{"buildpack": "heroku/nodejs"},
                                                      {"buildpack": "https://github.com/heroku/heroku-buildpack-python.git#v1"}]})
    assert response.status_code == 200, response.get_json()
    expected = [{"ordinal": 0, "buildpack": {"url": "heroku/nodejs", "name": "heroku/nodejs"}},
                {"ordinal": 1, "buildpack": {"url": "https://github.com/heroku/heroku-buildpack-python.git#v1",
                                             "name": "https://github.com/heroku/heroku-buildpack-python.git#v1"}}]
    assert response.get_json() == expected
    assert installed(api, alice, app_name) == expected
    assert put(api, alice, app_name, {"updates": [{"buildpack": "python"}]}).status_code == 200
    assert installed(api, alice, app_name) == [{"ordinal": 0, "buildpack": {"url": "python", "name": "heroku/python"}}]
    assert put(api, alice, app_name, {"updates": []}).get_json() == []
    assert installed(api, alice, app_name) == []


@pytest.mark.parametrize("body, message", [
    ({}, "updates"),
    ({"updates": "python"}, "updates"),
    ({"updates": [{"buildpack": ""}]}, "buildpack"),
    ({"updates": [{"url": "python"}]}, "url"),
    ({"updates": [{"buildpack": "heroku/ruby"}]}, "not one Berth can use"),
    ({"updates": [{"buildpack": "ext::sh -c id"}]}, "not one Berth can use"),
    ({"updates": [{"buildpack": "python"}, {"buildpack": "python"}]}, "listed twice"),
    ({"updates": [{"buildpack": "python"}] * 1 + [{"buildpack": f"https://example.com/{i}.tgz"} for i in range(8)]},
     "at most 8"),
])
def test_bad_updates_are_refused_and_change_nothing(api: Api, alice: User, app_name: str, body: object,
                                                     message: str) -> None:
    assert put(api, alice, app_name, {"updates": [{"buildpack": "procfile"}]}).status_code == 200
    response = put(api, alice, app_name, body)
    assert response.status_code == 422, response.get_json()
    assert set(response.get_json()) >= {"id", "message"}
    assert message in response.get_json()["message"]
    assert installed(api, alice, app_name) == [{"ordinal": 0, "buildpack": {"url": "procfile", "name": "heroku/procfile"}}]


def test_only_the_apps_people_see_or_change_its_buildpacks(api: Api, alice: User, bob: User, app_name: str) -> None:
    assert api.get(f"/apps/{app_name}/buildpack-installations", bob).status_code == 404
    assert put(api, bob, app_name, {"updates": [{"buildpack": "python"}]}).status_code == 404
    assert installed(api, alice, app_name) == []


def test_buildpacks_go_with_their_app(api: Api, alice: User, app_name: str) -> None:
    put(api, alice, app_name, {"updates": [{"buildpack": "python"}]})
    assert api.delete(f"/apps/{app_name}", alice).status_code == 200
    assert api.post("/apps", alice, json={"name": app_name}).status_code == 201
    assert installed(api, alice, app_name) == []


class TestWithPrivateTargetsRefused:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(allow_private_targets=False)  # as `make run` has it

    @pytest.mark.parametrize("url", ["http://127.0.0.1:5000/evil.tgz", "https://169.254.169.254/latest.git",
                                     "https://[::1]/x.git#main"])
    def test_a_buildpack_url_on_a_private_address_is_refused(self, api: Api, alice: User, app_name: str,
                                                             url: str) -> None:
        response = put(api, alice, app_name, {"updates": [{"buildpack": url}]})
        assert response.status_code == 422
        assert "loopback, private or link-local" in response.get_json()["message"]
        assert installed(api, alice, app_name) == []


def test_the_registry_stand_in_names_builtins_by_heroku_registry_url(api: Api) -> None:
    found = api.get("/buildpack-registry/buildpacks/heroku%2Fpython").get_json()
    assert found == {"name": "heroku/python",
                     "blob_url": "https://buildpack-registry.s3.amazonaws.com/buildpacks/heroku/python.tgz"}
    # Not a built-in: the name comes back, so that setting it meets Berth's own check and message.
    assert api.get("/buildpack-registry/buildpacks/heroku%2Fruby").get_json()["blob_url"] == "heroku/ruby"
