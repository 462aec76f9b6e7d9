"""Config vars: set/unset, validation, the 32 kB cap, releases made before answering, encryption."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import Api, User


@pytest.fixture
def app_name(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "configured"}).status_code == 201
    return "configured"


def releases(api: Api, user: User, app: str) -> list[tuple[int, str]]:
    return [(r["version"], r["description"]) for r in api.get(f"/apps/{app}/releases", user).get_json()]


def test_set_and_unset_create_releases_before_answering(api: Api, alice: User, app_name: str) -> None:
    response = api.patch(f"/apps/{app_name}/config-vars", alice, json={"FOO": "1", "BAR": "two"})
    assert response.status_code == 200 and response.get_json() == {"FOO": "1", "BAR": "two"}
    newest = api.get(f"/apps/{app_name}/releases", alice,
                     headers={"Range": "version ..; order=desc,max=1"}).get_json()[0]
    assert newest["version"] == 2 and newest["description"] == "Set FOO, BAR config vars"
    assert newest["user"]["email"] == alice.email and newest["current"] is True
    assert api.patch(f"/apps/{app_name}/config-vars", alice, json={"FOO": None}).get_json() == {"BAR": "two"}
    assert releases(api, alice, app_name)[-1] == (3, "Remove FOO config vars")
    assert api.get(f"/apps/{app_name}/config-vars", alice).get_json() == {"BAR": "two"}


def test_mixed_change_description_and_no_op_makes_no_release(api: Api, alice: User, app_name: str) -> None:
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"A": "1", "B": "2"})
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"C": "3", "A": None})
    assert releases(api, alice, app_name)[-1] == (3, "Set C and remove A config vars")
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"C": "3", "NEVER_SET": None})
    assert len(releases(api, alice, app_name)) == 3


def test_release_snapshots_keep_old_config(api: Api, alice: User, app_name: str) -> None:
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"A": "old"})
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"A": "new"})
    assert api.get(f"/apps/{app_name}/releases/2/config-vars", alice).get_json() == {"A": "old"}
    assert api.get(f"/apps/{app_name}/releases/v3/config-vars", alice).get_json() == {"A": "new"}
    v2 = api.get(f"/apps/{app_name}/releases/v2", alice).get_json()
    assert v2["current"] is False and v2["eligible_for_rollback"] is True
    assert api.get(f"/apps/{app_name}/releases/{v2['id']}", alice).get_json()["version"] == 2
    assert api.get(f"/apps/{app_name}/releases/99", alice).status_code == 404
    assert api.get(f"/apps/{app_name}/releases/latest", alice).status_code == 404


def test_scalars_are_coerced_like_heroku(api: Api, alice: User, app_name: str) -> None:
    body = api.patch(f"/apps/{app_name}/config-vars", alice, json={"N": 3, "F": 1.5, "B": True}).get_json()
    assert body == {"N": "3", "F": "1.5", "B": "true"}


@pytest.mark.parametrize("bad", [
    {"1ABC": "x"}, {"BAD-NAME": "x"}, {"": "x"}, {"ÜNÏ": "x"}, {"A B": "x"},
    {"OK": {"nested": 1}}, {"OK": [1, 2]}, {"OK": "nul\u0000byte"},
])
def test_invalid_names_and_values_are_422_and_change_nothing(api: Api, alice: User, app_name: str,
                                                              bad: dict) -> None:
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"KEEP": "me"})
    before = releases(api, alice, app_name)
    response = api.patch(f"/apps/{app_name}/config-vars", alice, json={"NEW": "v", **bad})
    assert response.status_code == 422 and response.get_json()["id"] == "invalid_params"
    assert api.get(f"/apps/{app_name}/config-vars", alice).get_json() == {"KEEP": "me"}
    assert releases(api, alice, app_name) == before


def test_non_object_body_is_400(api: Api, alice: User, app_name: str) -> None:
    for body in ([["A", "1"]], "A=1", 5):
        response = api.patch(f"/apps/{app_name}/config-vars", alice, json=body)
        assert response.status_code == 400, body


def test_total_size_is_capped_at_32_kb(api: Api, alice: User, app_name: str) -> None:
    assert api.patch(f"/apps/{app_name}/config-vars", alice, json={"BIG": "x" * 30000}).status_code == 200
    response = api.patch(f"/apps/{app_name}/config-vars", alice, json={"MORE": "y" * 3000})
    assert response.status_code == 422 and "32 kB" in response.get_json()["message"]
    assert set(api.get(f"/apps/{app_name}/config-vars", alice).get_json()) == {"BIG"}
    # Shrinking an oversized change back under the cap is fine.
    assert api.patch(f"/apps/{app_name}/config-vars", alice, json={"BIG": None, "MORE": "y" * 3000}).status_code == 200


def test_hostile_values_round_trip_exactly(api: Api, alice: User, app_name: str) -> None:
    values = {"SQL": "'; DROP TABLE apps; --", "EMOJI": "🚀 ünïcödé 漢字", "NEWLINES": "a\nb\r\nc",
              "QUOTES": "\"'`$(rm -rf /)", "EMPTY": ""}
    assert api.patch(f"/apps/{app_name}/config-vars", alice, json=values).get_json() == values
    assert api.get(f"/apps/{app_name}/config-vars", alice).get_json() == values
    assert api.get("/apps", alice).status_code == 200


def test_no_plaintext_value_is_stored(api: Api, alice: User, app_name: str) -> None:
    secret = "plaintext-canary-7f3a9c"
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"CANARY": secret, f"NAME_{secret[:3]}": secret})
    database = api.app.extensions["berth.database"]
    with database.write_engine.connect() as connection:
        if database.is_sqlite:
            path = Path(database.url.removeprefix("sqlite:///"))
            files = [path, path.with_name(path.name + "-wal")]
            blob = b"".join(f.read_bytes() for f in files if f.exists())
            assert secret.encode() not in blob
        rows = []
        for table in ("config_vars", "releases"):
            rows += [json.dumps(list(r), default=str) for r in connection.execute(text(f"SELECT * FROM {table}"))]
    assert rows and not any(secret in row for row in rows)


def test_concurrent_style_sequence_keeps_versions_dense(api: Api, alice: User, app_name: str) -> None:
    for index in range(5):
        api.patch(f"/apps/{app_name}/config-vars", alice, json={f"V{index}": str(index)})
    versions = [v for v, _ in releases(api, alice, app_name)]
    assert versions == list(range(1, 7))
    current = [r for r in api.get(f"/apps/{app_name}/releases", alice).get_json() if r["current"]]
    assert [r["version"] for r in current] == [6]


def test_concurrent_changes_get_distinct_dense_versions(api: Api, alice: User, app_name: str) -> None:
    """Eight writers at once: every change lands, versions are 1..9 with no gaps or clashes."""
    from concurrent.futures import ThreadPoolExecutor

    def change(index: int) -> int:
        client = Api(api.app)
        return client.patch(f"/apps/{app_name}/config-vars", alice, json={f"K{index}": str(index)}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(change, range(8)))
    assert statuses == [200] * 8
    assert len(api.get(f"/apps/{app_name}/config-vars", alice).get_json()) == 8
    assert [v for v, _ in releases(api, alice, app_name)] == list(range(1, 10))
