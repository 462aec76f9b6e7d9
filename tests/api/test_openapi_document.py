"""/openapi.json says what the server does, for the disagreements an outside schemathesis run found
(the bounded run itself is tests/api/test_openapi_conformance.py)."""
from __future__ import annotations

import re
from typing import Any

from tests.conftest import Api, User


def _doc(api: Api) -> dict[str, Any]:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_a_partial_page_is_documented_and_answered(api: Api, alice: User) -> None:
    for name in ("page-one", "page-two"):
        assert api.post("/apps", alice, json={"name": name}).status_code == 201
    partial = api.get("/apps", alice, headers={"Range": "name ..; max=1"})
    assert partial.status_code == 206 and "Next-Range" in partial.headers
    assert "206" in _doc(api)["paths"]["/apps"]["get"]["responses"]


def test_account_flags_are_json_booleans_as_documented(api: Api, alice: User) -> None:
    for bad in (0, 1, "true", None):
        answer = api.patch("/account", alice, json={"beta": bad})
        assert answer.status_code == 422, (bad, answer.get_json())
        assert answer.get_json()["id"] == "invalid_params"
    assert api.patch("/account", alice, json={"beta": True}).get_json()["beta"] is True
    beta = _doc(api)["components"]["schemas"]["AccountUpdate"]["properties"]["beta"]
    assert beta["type"] == "boolean"


def test_references_are_documented_as_the_server_reads_them(api: Api, alice: User) -> None:
    assert api.post("/apps", alice, json={"name": "refs"}).status_code == 201
    for bad in ({}, {"colour": "x"}, {"id": None, "name": "heroku-24"}, {"name": " "}):
        answer = api.patch("/apps/refs", alice, json={"build_stack": bad})
        assert answer.status_code == 422, (bad, answer.get_json())
    shape = _doc(api)["components"]["schemas"]["AppUpdate"]["properties"]["build_stack"]["oneOf"]
    as_object = next(s for s in shape if s["type"] == "object")
    assert as_object["additionalProperties"] is False and as_object["minProperties"] == 1
    assert api.patch("/apps/refs", alice, json={"build_stack": {"name": "heroku-24"}}).status_code == 200


def test_config_var_names_are_documented_with_the_servers_rule(api: Api, alice: User) -> None:
    assert api.post("/apps", alice, json={"name": "named-vars"}).status_code == 201
    body = _doc(api)["paths"]["/apps/{app_ref}/config-vars"]["patch"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    [pattern] = schema["patternProperties"]
    for name, accepted in (("GOOD_NAME", True), ("1BAD", False), ("BAD\n", False), ("x-y", False)):
        assert bool(re.search(pattern, name)) is accepted, name
        answer = api.patch("/apps/named-vars/config-vars", alice, json={name: "v"})
        assert (answer.status_code == 200) is accepted, (name, answer.get_json())
