"""Cross-cutting Platform API protocol (spec §1): JSON errors, Accept variants, Request-Id,
Range pagination, rate limits, timestamps and ids, the OpenAPI document, and hostile input."""
from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import pytest
from flask import Flask

from berth import create_app
from berth.config import Settings
from tests.conftest import Api, User, basic, empty_all_tables

UUID_RULE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP_RULE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
APP_NAME_RULE = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
INVALID_RANGE = "Invalid `Range` header. Please use format like `id ..; max=10, order=desc`."
ONE_MIB = 1024 * 1024


# ---- helpers ---------------------------------------------------------------------------------

def json_error(response: Any, status: int, error_id: str | None = None) -> dict[str, Any]:
    """A Heroku-shaped error: the status, application/json, {"id", "message"}; never HTML."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, text[:500])
    assert response.mimetype == "application/json", (response.content_type, text[:200])
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()
    body = response.get_json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("id"), str) and body["id"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if error_id is not None:
        assert body["id"] == error_id, body
    return body


def ok_json(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/json", response.content_type
    return response.get_json()


def create_app_named(api: Api, user: User, name: str) -> dict[str, Any]:
    return ok_json(api.post("/apps", user, json={"name": name}), 201)


def set_config(api: Api, user: User, app: str, changes: dict[str, Any]) -> dict[str, str]:
    return ok_json(api.patch(f"/apps/{app}/config-vars", user, json=changes))


def app_state(api: Api, user: User, app: str) -> tuple[Any, Any, Any]:
    """Everything a refused request must leave alone: the app, its config and its releases."""
    return (ok_json(api.get(f"/apps/{app}", user)),
            ok_json(api.get(f"/apps/{app}/config-vars", user)),
            ok_json(api.get(f"/apps/{app}/releases", user)))


def walk(api: Api, user: User, path: str, first_range: str) -> list[Any]:
    """Follows Next-Range like the Heroku CLI does; returns every page's response."""
    pages, sent = [], first_range
    for _ in range(100):
        response = api.get(path, user, headers={"Range": sent})
        assert response.status_code in (200, 206), (sent, response.status_code,
                                                     response.get_data(as_text=True)[:300])
        pages.append(response)
        following = response.headers.get("Next-Range")
        if following is None:
            assert response.status_code == 200, "a last page must not be 206"
            return pages
        assert response.status_code == 206, "a page with Next-Range must be 206"
        sent = following
    pytest.fail(f"Next-Range never ended for {first_range!r} on {path}")


def rows_of(pages: list[Any]) -> list[dict[str, Any]]:
    return [row for page in pages for row in page.get_json()]


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


# ---- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def budget_api(settings: Settings) -> Iterator[Callable[[int], Api]]:
    """Builds Flask apps over the test database with a given hourly rate budget."""
    made: list[Flask] = []

    def build(per_hour: int) -> Api:
        flask_app = create_app(settings.with_overrides(rate_limit_per_hour=per_hour))
        made.append(flask_app)
        return Api(flask_app)

    yield build
    if made:
        empty_all_tables(made[0])
    for flask_app in made:
        flask_app.extensions["berth.database"].dispose()


APP_NAMES = [f"page-app-{letter}" for letter in "dagcfeb"]  # created out of name order


@pytest.fixture
def seven_apps(api: Api, alice: User) -> list[dict[str, Any]]:
    return [create_app_named(api, alice, name) for name in APP_NAMES]


@pytest.fixture
def released_app(api: Api, alice: User) -> str:
    """An app with six releases: the initial one and five config changes."""
    create_app_named(api, alice, "rel-app")
    for step in range(1, 5):
        set_config(api, alice, "rel-app", {f"VAR_{step}": str(step)})
    set_config(api, alice, "rel-app", {"VAR_1": None})
    return "rel-app"


# ---- errors are JSON {"id", "message"} ----------------------------------------------------------

JSON_HEADERS = {"Content-Type": "application/json"}


def test_malformed_json_body_is_400_bad_request(api: Api, alice: User) -> None:
    create_app_named(api, alice, "cfg-target")
    before = app_state(api, alice, "cfg-target")
    for raw in (b"{", b'{"name": "x",}', b"{'name': 'x'}", b'{"name": "x"} trailing', b"\xff\xfe{}",
                b"nul\x00l", b"{\"name\": \"\xff\"}"):
        json_error(api.post("/apps", alice, data=raw, headers=JSON_HEADERS), 400, "bad_request")
        json_error(api.patch("/apps/cfg-target/config-vars", alice, data=raw, headers=JSON_HEADERS),
                   400, "bad_request")
        json_error(api.patch("/apps/cfg-target", alice, data=raw, headers=JSON_HEADERS), 400,
                   "bad_request")
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["cfg-target"]
    assert app_state(api, alice, "cfg-target") == before


HOSTILE_BODIES = {
    "deeply nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "deeply nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "nested within a field": b'{"name": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    "a lone surrogate": b'{"name": "\\ud800"}',
    "a lone surrogate as a key": b'{"\\udfff": "x"}',
    "a lone surrogate in a config value": b'{"KEY": "a\\udc00b"}',
}


@pytest.mark.parametrize("label", sorted(HOSTILE_BODIES))
def test_deep_nesting_and_lone_surrogates_are_400_on_every_json_endpoint(api: Api, alice: User,
                                                                         label: str) -> None:
    raw = HOSTILE_BODIES[label]
    create_app_named(api, alice, "deep-target")
    before = app_state(api, alice, "deep-target")
    account_before = ok_json(api.get("/account", alice))
    keys_before = ok_json(api.get("/oauth/authorizations", alice))
    for method, path in (("POST", "/apps"), ("PATCH", "/apps/deep-target"),
                         ("PATCH", "/apps/deep-target/config-vars"), ("PATCH", "/account"),
                         ("POST", "/oauth/authorizations"), ("POST", "/apps/deep-target/log-drains"),
                         ("POST", "/apps/deep-target/addons"), ("POST", "/apps/deep-target/log-sessions")):
        body = json_error(api.request(method, path, alice, data=raw, headers=JSON_HEADERS), 400,
                          "bad_request")
        assert "nested" in body["message"] or "surrogate" in body["message"], body
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["deep-target"]
    assert app_state(api, alice, "deep-target") == before
    assert ok_json(api.get("/account", alice)) == account_before
    assert ok_json(api.get("/oauth/authorizations", alice)) == keys_before


def test_json_that_is_not_an_object_is_400(api: Api, alice: User) -> None:
    create_app_named(api, alice, "obj-target")
    before = app_state(api, alice, "obj-target")
    account_before = ok_json(api.get("/account", alice))
    for body in ("[]", '["name"]', '[{"name": "arr-app"}]', '"a string"', "42", "true", "null"):
        json_error(api.post("/apps", alice, data=body, headers=JSON_HEADERS), 400, "bad_request")
        json_error(api.patch("/apps/obj-target", alice, data=body, headers=JSON_HEADERS), 400,
                   "bad_request")
        json_error(api.patch("/apps/obj-target/config-vars", alice, data=body, headers=JSON_HEADERS),
                   400, "bad_request")
        json_error(api.patch("/account", alice, data=body, headers=JSON_HEADERS), 400, "bad_request")
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["obj-target"]
    assert app_state(api, alice, "obj-target") == before
    assert ok_json(api.get("/account", alice)) == account_before


def test_unknown_fields_are_422_naming_the_field(api: Api, alice: User) -> None:
    create_app_named(api, alice, "known-app")
    before = app_state(api, alice, "known-app")
    keys_before = ok_json(api.get("/oauth/authorizations", alice))
    account_before = ok_json(api.get("/account", alice))
    for method, path, body, field in [
        ("POST", "/apps", {"name": "ok-name", "colour": "blue"}, "colour"),
        ("PATCH", "/apps/known-app", {"maintenance": True, "bogus_field": 1}, "bogus_field"),
        ("PATCH", "/account", {"name": "A", "shoe_size": 44}, "shoe_size"),
        ("POST", "/oauth/authorizations", {"description": "x", "unheard_of": True}, "unheard_of"),
    ]:
        body_out = json_error(api.request(method, path, alice, json=body), 422, "invalid_params")
        assert field in body_out["message"], (path, body_out)
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["known-app"]
    assert app_state(api, alice, "known-app") == before
    assert ok_json(api.get("/oauth/authorizations", alice)) == keys_before
    assert ok_json(api.get("/account", alice)) == account_before


def test_wrong_types_are_422(api: Api, alice: User) -> None:
    create_app_named(api, alice, "typed-app")
    before = app_state(api, alice, "typed-app")
    account_before = ok_json(api.get("/account", alice))
    keys_before = ok_json(api.get("/oauth/authorizations", alice))
    for method, path, body in [
        ("PATCH", "/apps/typed-app", {"maintenance": "yes"}),
        ("PATCH", "/apps/typed-app", {"maintenance": "true"}),
        ("PATCH", "/apps/typed-app", {"maintenance": None}),
        ("PATCH", "/apps/typed-app", {"name": 5}),
        ("PATCH", "/apps/typed-app", {"name": ["typed-app-2"]}),
        ("POST", "/apps", {"name": 5}),
        ("POST", "/apps", {"name": {"name": "x-app"}}),
        ("POST", "/apps", {"name": True}),
        ("PATCH", "/account", {"beta": "true"}),
        ("PATCH", "/account", {"name": 12}),
        ("PATCH", "/apps/typed-app/config-vars", {"FOO": {"nested": "object"}}),
        ("PATCH", "/apps/typed-app/config-vars", {"FOO": ["a", "list"]}),
        ("POST", "/oauth/authorizations", {"expires_in": "soon"}),
        ("POST", "/oauth/authorizations", {"description": ["x"]}),
    ]:
        json_error(api.request(method, path, alice, json=body), 422, "invalid_params")
    assert app_state(api, alice, "typed-app") == before
    assert ok_json(api.get("/account", alice)) == account_before
    assert ok_json(api.get("/oauth/authorizations", alice)) == keys_before
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["typed-app"]


def test_unknown_route_is_404_and_wrong_method_is_405_json(api: Api, alice: User) -> None:
    for path in ("/no-such-thing", "/apps/x/features", "/teams", "/spaces/s", "/pipelines",
                 "/account/features/x/y/z", "/apps/x/config-vars/extra/segments"):
        json_error(api.get(path, alice), 404, "not_found")
        json_error(api.get(path), 404, "not_found")
        json_error(api.post(path, alice, json={}), 404, "not_found")
    # a known route with the wrong method: 405, JSON, and what is allowed
    for method, path, allowed in [
        ("PUT", "/apps", {"GET", "POST"}),
        ("DELETE", "/apps", {"GET", "POST"}),
        ("DELETE", "/account/rate-limits", {"GET"}),
        ("POST", "/openapi.json", {"GET"}),
        ("PUT", "/apps/some-app/config-vars", {"GET", "PATCH"}),
    ]:
        for user in (alice, None):
            response = api.request(method, path, user, json={})
            json_error(response, 405)
            listed = {m.strip().upper() for m in response.headers.get("Allow", "").split(",")}
            assert allowed <= listed and method not in listed, (path, response.headers.get("Allow"))


def test_body_over_one_mib_is_413_json_and_changes_nothing(api: Api, alice: User) -> None:
    create_app_named(api, alice, "big-app")
    before = app_state(api, alice, "big-app")
    huge = '{"name": "' + "a" * (ONE_MIB + 10) + '"}'
    json_error(api.post("/apps", alice, data=huge, headers=JSON_HEADERS), 413)
    huge_config = '{"BIG": "' + "x" * (ONE_MIB + 10) + '"}'
    json_error(api.patch("/apps/big-app/config-vars", alice, data=huge_config, headers=JSON_HEADERS),
               413)
    assert app_state(api, alice, "big-app") == before
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["big-app"]
    # just under the limit is an ordinary request
    near = '{"maintenance": true}' + " " * (ONE_MIB - 100)
    assert ok_json(api.patch("/apps/big-app", alice, data=near, headers=JSON_HEADERS))["maintenance"]


def test_missing_wrong_malformed_or_revoked_credentials_are_401(api: Api, alice: User) -> None:
    wrong = [None, "Bearer not-a-real-key", "Bearer ", "Token abcdef", basic("", "wrong-key"),
             basic(alice.email, "wrong password"), basic(alice.email, alice.password)]
    malformed = ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon-here").decode(),
                 "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Basic", "Basic ====",
                 "Basic " + base64.b64encode(b":" + alice.key.encode()).decode()[:-3]]
    for header in wrong + malformed:
        headers = {} if header is None else {"Authorization": header}
        for method, path in (("GET", "/account"), ("GET", "/apps"), ("POST", "/apps"),
                             ("GET", "/account/rate-limits")):
            response = api.request(method, path, None, json={} if method == "POST" else None,
                                   headers=headers)
            json_error(response, 401, "unauthorized")
            assert "RateLimit-Remaining" not in response.headers
    assert ok_json(api.get("/apps", alice)) == []
    # heroku3, curl and git: Basic with the key as password and any user name
    for header in (basic("", alice.key), basic("heroku", alice.key), basic(alice.email, alice.key)):
        assert ok_json(api.get("/account", None, headers={"Authorization": header}))["id"] == alice.id
    # a revoked key
    minted = ok_json(api.post("/oauth/authorizations", alice, json={"description": "temp"}), 201)
    token = minted["access_token"]["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert ok_json(api.get("/account", None, headers=bearer))["id"] == alice.id
    ok_json(api.delete(f"/oauth/authorizations/{minted['id']}", alice))
    json_error(api.get("/account", None, headers=bearer), 401, "unauthorized")
    json_error(api.get("/account", None, headers={"Authorization": basic("", token)}), 401,
               "unauthorized")
    assert ok_json(api.get("/account", alice))["id"] == alice.id  # the default key still works


def test_tolerated_keys_from_the_heroku_cli_and_heroku3_are_accepted(api: Api, alice: User) -> None:
    plain = create_app_named(api, alice, "plain-app")
    cli = ok_json(api.post("/apps", alice, json={
        "name": "cli-app", "kernel": None, "locked": False, "internal_routing": False,
        "feature_flags": [], "region": None}), 201)
    cli_values = ok_json(api.post("/apps", alice, json={
        "name": "cli-app-2", "kernel": "heroku-24", "locked": True, "internal_routing": True,
        "feature_flags": ["spaces-strict-tls"]}), 201)
    heroku3 = ok_json(api.post("/apps", alice, json={"name": "h3-app", "stack": "cedar",
                                                     "region": None}), 201)
    assert (cli["name"], cli_values["name"], heroku3["name"]) == ("cli-app", "cli-app-2", "h3-app")
    # "cedar" is heroku3's default; it maps to whatever stack Berth gives apps by default.
    assert heroku3["stack"]["name"] == plain["stack"]["name"]
    assert cli["region"]["name"] == plain["region"]["name"]
    # some clients POST with no body at all
    empty = ok_json(api.post("/apps", alice, data=b"", headers=JSON_HEADERS), 201)
    assert APP_NAME_RULE.match(empty["name"])


# ---- Accept ----------------------------------------------------------------------------------

def test_accept_variants_all_answer_json(api: Api, alice: User) -> None:
    for accept in ("application/vnd.heroku+json; version=3",
                   "application/vnd.heroku+json; version=3.sdk",
                   "application/vnd.heroku+json; version=3.cedar-acm",
                   "application/vnd.heroku+json; version=3.run-inside",
                   "application/vnd.heroku+json; version=3.docker-releases",
                   "application/json", "*/*", None):
        headers = {"Authorization": f"Bearer {alice.key}"}
        if accept is not None:
            headers["Accept"] = accept
        # the raw test client, which sends no Accept unless told to
        assert ok_json(api.client.get("/account", headers=headers))["email"] == alice.email, accept
        assert ok_json(api.client.get("/apps", headers=headers)) == [], accept


# ---- Request-Id ------------------------------------------------------------------------------

def test_request_id_on_every_response_echoed_or_fresh(api: Api, alice: User) -> None:
    responses = [
        api.get("/account", alice),
        api.post("/apps", alice, json={"name": "rid-app"}),
        api.get("/apps/rid-app/config-vars", alice),
        api.get("/apps/no-such-app", alice),
        api.post("/apps", alice, json={"nope": 1}),
        api.get("/nowhere", alice),
        api.get("/account"),
        api.request("PUT", "/apps", alice),
        api.get("/openapi.json"),
    ]
    seen = set()
    for response in responses:
        request_id = response.headers.get("Request-Id")
        assert request_id and UUID_RULE.match(request_id), (response.status_code, request_id)
        seen.add(request_id)
    assert len(seen) == len(responses), "each request gets a fresh id"
    # the Heroku CLI sends a growing comma-joined list: only its first element is echoed
    growing = ",".join(str(uuid.uuid4()) for _ in range(150))  # the CLI's list, about 5.5 KB
    for sent, echoed in [
        ("b9f1c6ea-0bd2-4bd0-9ba4-1b9c6f3e0d5a", "b9f1c6ea-0bd2-4bd0-9ba4-1b9c6f3e0d5a"),
        ("my-request.42", "my-request.42"),
        ("first-id,second-id", "first-id"),
        ("first-id, second-id, third-id", "first-id"),
        (growing, growing.split(",")[0]),
    ]:
        for response in (api.get("/account", alice, headers={"Request-Id": sent}),
                         api.get("/apps/missing-app", alice, headers={"Request-Id": sent}),
                         api.get("/no-route", alice, headers={"Request-Id": sent})):
            assert response.headers.get("Request-Id") == echoed, (sent[:40], response.status_code)
    # garbage or unsafe values are replaced by a fresh UUID
    for sent in ("has spaces in it", "<script>alert(1)</script>", "tab\tinside", "semi;colon",
                 "x%0d%0aSet-Cookie: a=b", "quote\"here", "", ",second-only", "../../etc/passwd",
                 "caf\u00e9"):
        first = api.get("/account", alice, headers={"Request-Id": sent}).headers.get("Request-Id")
        second = api.get("/nowhere", alice, headers={"Request-Id": sent}).headers.get("Request-Id")
        assert first and UUID_RULE.match(first), (sent, first)
        assert second and UUID_RULE.match(second) and second != first, (sent, second)


# ---- Range pagination: apps ----------------------------------------------------------------------

def test_app_list_default_order_accept_ranges_and_max_clamp(api: Api, alice: User,
                                                            seven_apps: list[dict]) -> None:
    ids = sorted(a["id"] for a in seven_apps)
    response = api.get("/apps", alice)
    body = ok_json(response)
    assert [a["id"] for a in body] == ids
    assert "Next-Range" not in response.headers
    ranges = {f.strip() for f in response.headers.get("Accept-Ranges", "").split(",")}
    assert {"id", "name"} <= ranges, response.headers.get("Accept-Ranges")
    assert response.headers.get("Content-Range", "").startswith(f"id {ids[0]}..{ids[-1]}")
    # max above 1000 is clamped, not refused
    for header in ("id ..; max=1000", "id ..; max=1001", "id ..; max=99999"):
        response = api.get("/apps", alice, headers={"Range": header})
        assert [a["id"] for a in ok_json(response)] == ids and "Next-Range" not in response.headers
    # an unknown sort field falls back to id
    response = api.get("/apps", alice, headers={"Range": "colour ..; max=3"})
    assert response.status_code == 206
    assert [a["id"] for a in response.get_json()] == ids[:3]
    assert response.headers["Next-Range"].startswith(f"id ]{ids[2]}..")
    assert [a["id"] for a in rows_of(walk(api, alice, "/apps", "colour ..; max=3"))] == ids


def test_following_next_range_visits_every_app_once(api: Api, alice: User,
                                                    seven_apps: list[dict]) -> None:
    for first_range, key, reverse in [
        ("id ..; max=2", "id", False),
        ("id ..; max=3, order=desc", "id", True),
        ("id ..; order=desc,max=1", "id", True),
        ("name ..; max=2", "name", False),
        ("name ..; max=4, order=desc", "name", True),
        ("name ..; max=1, order=asc", "name", False),
        ("id ..; max=7", "id", False),
    ]:
        pages = walk(api, alice, "/apps", first_range)
        rows = rows_of(pages)
        assert [r[key] for r in rows] == sorted((a[key] for a in seven_apps), reverse=reverse), first_range
        size = int(re.search(r"max=(\d+)", first_range).group(1))  # type: ignore[union-attr]
        assert len(pages) == -(-7 // size), first_range
        for page in pages:
            page_rows = page.get_json()
            assert 1 <= len(page_rows) <= size
            assert page.headers["Content-Range"].startswith(
                f"{key} {page_rows[0][key]}..{page_rows[-1][key]}"), page.headers["Content-Range"]
            following = page.headers.get("Next-Range")
            if following is not None:
                assert page.status_code == 206 and len(page_rows) == size
                assert following.startswith(f"{key} ]{page_rows[-1][key]}.."), following
                assert f"max={size}" in following
                assert ("order=desc" in following) == reverse, following
            else:
                assert page is pages[-1] and page.status_code == 200


def test_timestamp_ranges_are_parsed_and_followed(
        api: Api, alice: User, seven_apps: list[dict]) -> None:
    """The CLI pages builds on `created_at` and http-call follows every Next-Range by itself."""
    created_order = [a["id"] for a in seven_apps]
    for first_range, reverse in [("created_at ..; max=2", False),
                                 ("created_at ..; max=3, order=desc", True),
                                 ("updated_at ..; max=2", False)]:
        rows = rows_of(walk(api, alice, "/apps", first_range))
        assert [r["id"] for r in rows] == (created_order[::-1] if reverse else created_order)
    for header in ("created_at ]not-a-date..", "updated_at [yesterday..; max=2"):
        body = json_error(api.get("/apps", alice, headers={"Range": header}), 400, "bad_request")
        assert body["message"] == INVALID_RANGE, header


def test_separator_styles_and_start_bounds(api: Api, alice: User, seven_apps: list[dict]) -> None:
    for header in ("id ..; ;",                 # heroku3, every list
                   "name ..; max=10;",         # heroku3
                   "id ..; max=10, order=asc",
                   "id ..; order=asc,max=10",
                   "",                         # the Heroku CLI sends an empty Range on some calls
                   "   ",
                   "id ..",
                   "id ..;",
                   "id  ..  ;  max=50  ,  "):
        response = api.get("/apps", alice, headers={"Range": header})
        body = ok_json(response)
        key = "name" if header.startswith("name") else "id"
        assert [a[key] for a in body] == sorted(a[key] for a in seven_apps), header
        assert "Next-Range" not in response.headers, header

    # `]x..` starts after x, `[x..` and `x..` at x
    def names(header: str) -> list[str]:
        return [a["name"] for a in ok_json(api.get("/apps", alice, headers={"Range": header}))]

    assert names("name ]page-app-c..") == ["page-app-d", "page-app-e", "page-app-f", "page-app-g"]
    assert names("name [page-app-c..") == ["page-app-c", "page-app-d", "page-app-e", "page-app-f",
                                            "page-app-g"]
    assert names("name page-app-c..") == names("name [page-app-c..")
    assert names("name ]page-app-c..; order=desc") == ["page-app-b", "page-app-a"]
    assert names("name [page-app-c..; order=desc") == ["page-app-c", "page-app-b", "page-app-a"]
    assert names("name ]page-app-g..") == []
    response = api.get("/apps", alice, headers={"Range": "name ]page-app-b..; max=2"})
    assert response.status_code == 206
    assert [a["name"] for a in response.get_json()] == ["page-app-c", "page-app-d"]
    assert response.headers["Next-Range"].startswith("name ]page-app-d..")
    ids = sorted(a["id"] for a in seven_apps)
    assert [a["id"] for a in ok_json(api.get("/apps", alice, headers={"Range": f"id ]{ids[3]}.."}))] \
        == ids[4:]
    assert [a["id"] for a in ok_json(api.get("/apps", alice, headers={"Range": f"id [{ids[3]}.."}))] \
        == ids[3:]


def test_invalid_range_is_400_with_heroku_message(api: Api, alice: User,
                                                  seven_apps: list[dict]) -> None:
    for header in ("id ..; max=0", "id ..; max=-1", "id ..; max=abc", "id ..; max=", "id ..; max",
                   "id ..; order=sideways", "id ..; order=DESCENDING", "id ..; max=2, order=up",
                   "id ..; max=1.5", "id ..; max=2; order", "max=5", "..; max=5", "id=5",
                   "1d ..; max=2"):
        body = json_error(api.get("/apps", alice, headers={"Range": header}), 400, "bad_request")
        assert body["message"] == INVALID_RANGE, header


def test_range_without_a_range_part_is_invalid(api: Api, alice: User, seven_apps: list[dict]) -> None:
    """`<field> [[ | ]<start>]..[<end>]`: the `..` is not optional; `garbage` is not a Range."""
    for header in ("garbage", "id", "name; max=2"):
        body = json_error(api.get("/apps", alice, headers={"Range": header}), 400, "bad_request")
        assert body["message"] == INVALID_RANGE, header


# ---- Range pagination: releases --------------------------------------------------------------------

def test_release_pages_visit_every_release_once(api: Api, alice: User, released_app: str) -> None:
    path = f"/apps/{released_app}/releases"
    response = api.get(path, alice)
    assert sorted(r["version"] for r in ok_json(response)) == [1, 2, 3, 4, 5, 6]
    assert "version" in {f.strip() for f in response.headers.get("Accept-Ranges", "").split(",")}
    assert "Next-Range" not in response.headers
    for first_range, expected in [
        ("version ..; order=desc,max=1", [6, 5, 4, 3, 2, 1]),      # Heroku CLI config:set
        ("version ..; max=1, order=desc", [6, 5, 4, 3, 2, 1]),     # Heroku CLI addons:attach
        ("version ..; max=15, order=desc", [6, 5, 4, 3, 2, 1]),    # Heroku CLI releases
        ("version ..; order=desc,max=10;", [6, 5, 4, 3, 2, 1]),    # heroku3
        ("version ..; ;", [1, 2, 3, 4, 5, 6]),                     # heroku3
        ("", [1, 2, 3, 4, 5, 6]),
        ("version ..; max=4", [1, 2, 3, 4, 5, 6]),
        ("version ]2..; max=2", [3, 4, 5, 6]),
        ("version [2..; max=2", [2, 3, 4, 5, 6]),
        ("version ]5..; max=2, order=desc", [4, 3, 2, 1]),
        ("version 5..; order=desc", [5, 4, 3, 2, 1]),
        ("id ..; max=2", None),
    ]:
        pages = walk(api, alice, path, first_range)
        rows = rows_of(pages)
        if expected is None:  # by id: every release once, in id order
            assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
            assert sorted(r["version"] for r in rows) == [1, 2, 3, 4, 5, 6]
        elif first_range:
            assert [r["version"] for r in rows] == expected, first_range
        else:
            assert sorted(r["version"] for r in rows) == expected
        field = first_range.split()[0] if first_range else "version"
        for page in pages[:-1]:
            assert page.status_code == 206
            assert page.headers["Next-Range"].startswith(f"{field} ]{page.get_json()[-1][field]}..")
            assert ("order=desc" in page.headers["Next-Range"]) == ("order=desc" in first_range)
    # the Heroku CLI prints `done, v<n>` from the first page of the newest-first list
    response = api.get(path, alice, headers={"Range": "version ..; order=desc,max=1"})
    assert response.status_code == 206
    (newest,) = response.get_json()
    assert newest["version"] == 6 and newest["current"] is True
    assert response.headers["Next-Range"].startswith("version ]6..")
    assert "max=1" in response.headers["Next-Range"]
    assert response.headers["Content-Range"].startswith("version 6..6")
    for header in ("version ]abc..", "version ..; max=0", "version ..; order=sideways",
                   "version ..; max=x"):
        body = json_error(api.get(path, alice, headers={"Range": header}), 400, "bad_request")
        assert body["message"] == INVALID_RANGE, header


def test_release_pages_on_created_at_visit_every_release_once(api: Api, alice: User,
                                                              released_app: str) -> None:
    rows = rows_of(walk(api, alice, f"/apps/{released_app}/releases", "created_at ..; max=2"))
    assert [r["version"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_out_of_range_numbers_are_never_server_errors(api: Api, alice: User, released_app: str) -> None:
    """A version far beyond any integer column is simply not there: no 500."""
    for header in ("version ]99999999999999999999..", "version [3000000000..; max=1"):
        response = api.get(f"/apps/{released_app}/releases", alice, headers={"Range": header})
        if response.status_code == 200:
            assert ok_json(response) == [], header
        else:
            assert json_error(response, 400, "bad_request")["message"] == INVALID_RANGE, header
    for ref in ("v99999999999999999999", "99999999999999999999", "3000000000", "v3000000000"):
        json_error(api.get(f"/apps/{released_app}/releases/{ref}", alice), 404, "not_found")
        json_error(api.get(f"/apps/{released_app}/releases/{ref}/config-vars", alice), 404,
                   "not_found")
    assert len(ok_json(api.get(f"/apps/{released_app}/releases", alice))) == 6


# ---- rate limits ---------------------------------------------------------------------------------

def test_rate_limit_remaining_decreases_by_one_and_rate_limits_is_free(
        budget_api: Callable[[int], Api]) -> None:
    api = budget_api(500)  # slow refill (~0.14 token/s) so timing cannot blur the count
    carol = api.make_user("carol@example.com")
    calls = [lambda: api.get("/account", carol),
             lambda: api.get("/apps", carol),
             lambda: api.post("/apps", carol, json={"name": "rl-app"}),
             lambda: api.get("/apps/no-such-app", carol),             # 404
             lambda: api.post("/apps", carol, json={"bogus": True}),  # 422
             lambda: api.patch("/apps/rl-app/config-vars", carol, json={"A": "1"}),
             lambda: api.get("/apps/rl-app/releases", carol, headers={"Range": "version ..; max=1"}),
             lambda: api.get("/account", carol)]
    seen = [int(call().headers["RateLimit-Remaining"]) for call in calls]
    assert seen == list(range(499, 499 - len(calls), -1)), seen
    for _ in range(3):
        response = api.get("/account/rate-limits", carol)
        assert ok_json(response) == {"remaining": seen[-1]}
        assert int(response.headers["RateLimit-Remaining"]) == seen[-1]
    assert int(api.get("/apps", carol).headers["RateLimit-Remaining"]) == seen[-1] - 1


def test_exhausted_budget_is_429_rate_limit_per_account(budget_api: Callable[[int], Api]) -> None:
    api = budget_api(3)
    carol, dave = api.make_user("carol@example.com"), api.make_user("dave@example.com")
    # failures cost nobody anything when nobody is authenticated
    for header in ("Bearer wrong", basic(carol.email, "not her password"), basic("", "wrong")):
        json_error(api.get("/account", None, headers={"Authorization": header}), 401, "unauthorized")
    assert [int(api.get("/account", carol).headers["RateLimit-Remaining"]) for _ in range(3)] == [2, 1, 0]
    limited = api.get("/account", carol)
    json_error(limited, 429, "rate_limit")
    assert limited.headers.get("RateLimit-Remaining") == "0"
    assert limited.headers.get("Request-Id")
    json_error(api.post("/apps", carol, json={"name": "too-late"}), 429, "rate_limit")
    json_error(api.get("/apps/too-late", carol), 429, "rate_limit")
    # the free endpoint still answers, and says nothing is left
    assert ok_json(api.get("/account/rate-limits", carol)) == {"remaining": 0}
    # another account has its own budget
    response = api.get("/account", dave)
    assert ok_json(response)["email"] == "dave@example.com"
    assert response.headers["RateLimit-Remaining"] == "2"
    assert ok_json(api.get("/apps", dave)) == []  # carol's refused create made nothing


def test_failed_requests_still_spend_the_budget(budget_api: Callable[[int], Api]) -> None:
    api = budget_api(3)
    carol = api.make_user("carol@example.com")
    json_error(api.get("/apps/does-not-exist", carol), 404, "not_found")
    json_error(api.post("/apps", carol, json={"name": 5}), 422, "invalid_params")
    json_error(api.patch("/apps/nope/config-vars", carol, data="{", headers=JSON_HEADERS), 400,
               "bad_request")
    json_error(api.get("/account", carol), 429, "rate_limit")
    assert ok_json(api.get("/account/rate-limits", carol)) == {"remaining": 0}


# ---- timestamps and ids ------------------------------------------------------------------------

def test_timestamps_are_iso8601_utc_seconds_and_ids_lowercase_uuids(api: Api, alice: User) -> None:
    now = datetime.now(timezone.utc)
    created = ok_json(api.post("/apps", alice, json={"name": "time-app"}), 201)
    set_config(api, alice, "time-app", {"X": "1"})
    key = ok_json(api.post("/oauth/authorizations", alice, json={"description": "t"}), 201)
    release = ok_json(api.get("/apps/time-app/releases", alice,
                              headers={"Range": "version ..; order=desc,max=1"}), 206)[0]
    objects = {
        "account": ok_json(api.get("/account", alice)),
        "app": created,
        "app again": ok_json(api.get("/apps/time-app", alice)),
        "listed app": ok_json(api.get("/apps", alice))[0],
        "release": release,
        "release by version": ok_json(api.get(f"/apps/time-app/releases/{release['version']}", alice)),
        "authorization": key,
        "listed authorization": ok_json(api.get("/oauth/authorizations", alice))[0],
    }
    checked = 0
    for label, obj in objects.items():
        assert UUID_RULE.match(obj["id"]), (label, obj["id"])
        for field, value in obj.items():
            if field.endswith("_at") and value is not None:
                assert isinstance(value, str) and TIMESTAMP_RULE.match(value), (label, field, value)
                assert abs(utc(value) - now) < timedelta(minutes=10), (label, field, value)
                checked += 1
    assert checked >= 14
    for ref in (created["owner"]["id"], release["user"]["id"], release["app"]["id"],
                key["user"]["id"], key["access_token"]["id"], created["stack"]["id"],
                created["region"]["id"], created["build_stack"]["id"]):
        assert UUID_RULE.match(ref), ref
    assert release["app"]["id"] == created["id"]
    # ids are matched whatever their case, and always answered in lowercase
    assert ok_json(api.get(f"/apps/{created['id'].upper()}", alice))["id"] == created["id"]
    assert ok_json(api.get(f"/oauth/authorizations/{key['id'].upper()}", alice))["id"] == key["id"]


# ---- OpenAPI ---------------------------------------------------------------------------------------

def test_openapi_document_needs_no_key(api: Api) -> None:
    response = api.get("/openapi.json")
    doc = ok_json(response)
    assert str(doc["openapi"]).startswith("3.")
    for path in ("/apps", "/apps/{app_ref}/config-vars", "/oauth/authorizations"):
        assert path in doc["paths"], sorted(doc["paths"])
    assert {"get", "post"} <= set(doc["paths"]["/apps"])
    assert "patch" in doc["paths"]["/apps/{app_ref}/config-vars"]
    schemas = doc["components"]["schemas"]
    assert {"id", "name"} <= set(schemas["App"]["properties"])
    assert "#/components/schemas/App" in str(doc["paths"]["/apps"]["get"]["responses"])
    assert "requestBody" in doc["paths"]["/apps"]["post"]
    assert "RateLimit-Remaining" not in response.headers  # no key, no budget spent
    assert api.get("/openapi.json", None, headers={"Authorization": "Bearer wrong"}).status_code == 200


# ---- hostile input: unicode and SQL-ish strings --------------------------------------------------

SQLISH = "'; DROP TABLE apps; --"
ROUND_TRIP_VALUES = {
    "SQL_1": SQLISH,
    "SQL_2": "Robert'); DROP TABLE config_vars;--",
    "SQL_3": "1 OR 1=1; SELECT * FROM accounts WHERE '' = '",
    "EMOJI": "🚀🔥 deploy 👩‍💻",
    "CJK": "日本語のテキスト，中文，한국어",
    "RTL": "\u202eevil\u202c مرحبا",
    "QUOTES": 'mixed "double" and \'single\' and `back` and \\backslashes\\',
    "NEWLINES": "line one\nline two\r\nline three\ttabbed",
    "FORMATS": "%s %d %(x)s {0} {{x}} $HOME ${PATH}",
    "EMPTY": "",
    "JSONISH": '{"a": [1, 2, null]}',
    "COMBINING": "e\u0301 a\u0308 \ufeffbom",
}


def test_config_values_round_trip_exactly(api: Api, alice: User) -> None:
    create_app_named(api, alice, "uni-app")
    assert set_config(api, alice, "uni-app", ROUND_TRIP_VALUES) == ROUND_TRIP_VALUES
    assert ok_json(api.get("/apps/uni-app/config-vars", alice)) == ROUND_TRIP_VALUES
    newest = ok_json(api.get("/apps/uni-app/releases", alice,
                             headers={"Range": "version ..; order=desc,max=1"}), 206)[0]
    assert ok_json(api.get(f"/apps/uni-app/releases/{newest['version']}/config-vars",
                           alice)) == ROUND_TRIP_VALUES
    assert ok_json(api.get("/apps", alice))[0]["name"] == "uni-app"  # the table is still there


def test_refused_config_patches_leave_config_and_releases_identical(api: Api, alice: User) -> None:
    create_app_named(api, alice, "same-app")
    set_config(api, alice, "same-app", {"KEEP": SQLISH, "OTHER": "日本"})
    before = app_state(api, alice, "same-app")
    for name in ("CAFÉ", "名前", "SPACE NAME", "DASH-NAME", "X;DROP", "", "A'B", "\u0130STANBUL",
                 "EMOJI_🚀", "1STARTS_WITH_DIGIT", SQLISH):
        json_error(api.patch("/apps/same-app/config-vars", alice,
                             json={"NEW": "would be set", "KEEP": None, name: "x"}), 422,
                   "invalid_params")
        json_error(api.patch("/apps/same-app/config-vars", alice, json={name: None}), 422,
                   "invalid_params")
    refused = [
        api.patch("/apps/same-app/config-vars", alice, json={"NEW": "x", "OBJ": {"a": 1}}),
        api.patch("/apps/same-app/config-vars", alice, json={"KEEP": None, "LIST": [1, 2]}),
        api.patch("/apps/same-app/config-vars", alice, json=["NEW"]),
        api.patch("/apps/same-app/config-vars", alice, data='{"NEW": "x",', headers=JSON_HEADERS),
        api.patch("/apps/same-app/config-vars", alice,
                  data='{"NEW": "' + "y" * (ONE_MIB + 1) + '"}', headers=JSON_HEADERS),
    ]
    for response in refused:
        assert 400 <= response.status_code < 500, response.status_code
        json_error(response, response.status_code)
    assert app_state(api, alice, "same-app") == before


def test_config_var_name_with_a_trailing_newline_is_refused(api: Api, alice: User) -> None:
    create_app_named(api, alice, "nl-app")
    before = app_state(api, alice, "nl-app")
    json_error(api.patch("/apps/nl-app/config-vars", alice, json={"NAME\n": "x"}), 422, "invalid_params")
    assert app_state(api, alice, "nl-app") == before


def test_hostile_app_names_are_422(api: Api, alice: User) -> None:
    create_app_named(api, alice, "host-app")
    before = app_state(api, alice, "host-app")
    for name in ("café", "アプリ", SQLISH, "app'--", "a b c", "ａｐｐ", "app\u200bname", "Ǳapp",
                 "app\x00name", "app%00", "💥-app"):
        json_error(api.post("/apps", alice, json={"name": name}), 422, "invalid_params")
        json_error(api.patch("/apps/host-app", alice, json={"name": name}), 422, "invalid_params")
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["host-app"]
    assert app_state(api, alice, "host-app") == before


def test_app_name_with_a_trailing_newline_is_refused(api: Api, alice: User) -> None:
    create_app_named(api, alice, "nl-app")
    before = app_state(api, alice, "nl-app")
    json_error(api.post("/apps", alice, json={"name": "new-app\n"}), 422, "invalid_params")
    json_error(api.patch("/apps/nl-app", alice, json={"name": "new-name\n"}), 422, "invalid_params")
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["nl-app"]
    assert app_state(api, alice, "nl-app") == before


def test_hostile_path_segments_are_404(api: Api, alice: User) -> None:
    create_app_named(api, alice, "path-app")
    for segment in ("caf%C3%A9", "%27%3B%20DROP%20TABLE%20apps%3B%20--", "%F0%9F%9A%80", "x" * 300,
                    "%E2%80%AE", "path-app%27"):
        for path in (f"/apps/{segment}", f"/apps/{segment}/config-vars", f"/apps/{segment}/releases",
                     f"/apps/path-app/releases/{segment}", f"/oauth/authorizations/{segment}",
                     f"/users/{segment}"):
            json_error(api.get(path, alice), 404, "not_found")
    assert [a["name"] for a in ok_json(api.get("/apps", alice))] == ["path-app"]


def test_nul_in_a_path_segment_is_404(api: Api, alice: User) -> None:
    """A percent-encoded NUL is just a name nothing has (PostgreSQL refuses NUL in text)."""
    create_app_named(api, alice, "nul-app")
    for path in ("/apps/%00", "/apps/nul%00app", "/apps/%00/config-vars", "/apps/%00/releases"):
        json_error(api.get(path, alice), 404, "not_found")


UNICODE_TEXT = "Zoë 李小龍 🚀 O'Brien\"; DROP TABLE accounts; -- \u202e\n(two lines)"


def test_authorization_description_and_account_name_round_trip(api: Api, alice: User) -> None:
    minted = ok_json(api.post("/oauth/authorizations", alice, json={"description": UNICODE_TEXT}), 201)
    assert minted["description"] == UNICODE_TEXT
    assert ok_json(api.get(f"/oauth/authorizations/{minted['id']}", alice))["description"] == UNICODE_TEXT
    renamed = "Ключ для CI — ✓ ''; DELETE FROM authorizations; --"
    assert ok_json(api.patch(f"/oauth/authorizations/{minted['id']}", alice,
                             json={"description": renamed}))["description"] == renamed
    listed = {a["id"]: a["description"] for a in ok_json(api.get("/oauth/authorizations", alice))}
    assert listed[minted["id"]] == renamed and len(listed) == 2

    assert ok_json(api.patch("/account", alice, json={"name": UNICODE_TEXT}))["name"] == UNICODE_TEXT
    assert ok_json(api.get("/account", alice))["name"] == UNICODE_TEXT
    assert ok_json(api.get("/users/~", alice))["name"] == UNICODE_TEXT
    assert minted["user"]["email"] == alice.email


def test_nul_characters_in_text_fields_are_never_server_errors(api: Api, alice: User) -> None:
    """Either stored and returned as sent, or refused as invalid params: never a 500."""
    value = "before\x00after"
    for method, path, field in (("PATCH", "/account", "name"),
                                ("POST", "/oauth/authorizations", "description")):
        account_before = ok_json(api.get("/account", alice))
        keys_before = ok_json(api.get("/oauth/authorizations", alice))
        response = api.request(method, path, alice, json={field: value})
        if 200 <= response.status_code < 300:
            assert response.get_json()[field] == value
        else:
            json_error(response, 422, "invalid_params")
            assert ok_json(api.get("/account", alice)) == account_before
            assert ok_json(api.get("/oauth/authorizations", alice)) == keys_before
