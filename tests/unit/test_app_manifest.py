"""app.json parsing: every key of runtime.md §4, and each bad field named in the manifest errors."""
from __future__ import annotations

import json

import pytest

from berth.platform.app_manifest import (MAX_MANIFEST_BYTES, AddonRequest, EnvVar, ManifestInvalid, ProcessFormation,
                                         parse_manifest)


def errors_of(manifest: object) -> list[str]:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(text)
    return caught.value.errors


def test_a_full_manifest_is_read_and_unknown_keys_are_ignored() -> None:
    manifest = parse_manifest(json.dumps({
        "name": "Sample", "description": "d", "keywords": ["a"], "website": "https://x", "repository": "https://y",
        "logo": "https://z", "success_url": "/welcome", "stack": "heroku-24", "image": "i",
        "env": {"GREETING": "hello", "PORTS": {"value": 5}, "SECRET_KEY": {"generator": "secret"},
                "API_TOKEN": {"description": "yours", "required": True},
                "OPTIONAL": {"required": False}},
        "formation": {"web": {"quantity": 1, "size": "Standard-1X"}, "worker": {"quantity": 0}},
        "addons": ["heroku-postgresql", {"plan": "heroku-redis:mini", "as": "CACHE", "options": {"version": 7}}],
        "buildpacks": [{"url": "heroku/python"}],
        "scripts": {"postdeploy": "python seed.py", "pr-predestroy": "x"},
        "environments": {"test": {"scripts": {"test": "pytest"}}},
        "some-future-key": {"anything": True}}))
    assert manifest.env["GREETING"] == EnvVar("hello")
    assert manifest.env["PORTS"].value == "5"
    assert manifest.env["SECRET_KEY"].generator == "secret"
    assert manifest.env["API_TOKEN"] == EnvVar(None, True, None, "yours")
    assert manifest.env["OPTIONAL"].required is False
    assert manifest.formation == {"web": ProcessFormation(1, "standard-1x"), "worker": ProcessFormation(0)}
    assert manifest.addons == [AddonRequest("heroku-postgresql"),
                               AddonRequest("heroku-redis:mini", "CACHE", {"version": "7"})]
    assert manifest.buildpacks == ["heroku/python"]
    assert manifest.postdeploy == "python seed.py"
    assert manifest.success_url == "/welcome"


def test_postdeploy_as_an_object_and_an_empty_manifest() -> None:
    assert parse_manifest('{"scripts": {"postdeploy": {"command": "./seed", "size": "basic"}}}').postdeploy == "./seed"
    empty = parse_manifest("{}")
    assert (empty.env, empty.addons, empty.formation, empty.buildpacks, empty.postdeploy) == ({}, [], {}, [], None)


def test_a_json_syntax_error_names_its_line_and_column() -> None:
    assert errors_of('{\n  "env": {\n    "A": "1"\n    "B": "2"\n  }\n}') == [
        "app.json is not valid JSON: Expecting ',' delimiter at line 4 column 5"]


@pytest.mark.parametrize("text, expected", [
    ("[1, 2]", "app.json must be a JSON object ({...})"),
    ('"text"', "app.json must be a JSON object ({...})"),
    ("", "app.json is not valid JSON: Expecting value at line 1 column 1"),
])
def test_what_is_not_an_object_is_refused(text: str, expected: str) -> None:
    assert errors_of(text) == [expected]


def test_a_huge_manifest_is_refused_before_it_is_parsed() -> None:
    assert "larger than" in errors_of('{"description": "' + "x" * MAX_MANIFEST_BYTES + '"}')[0]


def test_every_bad_field_is_named_at_once() -> None:
    errors = errors_of({
        "name": "x" * 31,
        "success_url": "ftp://example.com/",
        "env": {"lower": "x", "GEN": {"generator": "uuid"}, "REQ": {"required": "yes"}, "OBJ": {"value": [1]}},
        "formation": {"web": {"quantity": -1, "size": "huge"}, "no spaces": {"quantity": 1},
                      "worker": {"size": "basic"}, "clock": {"quantity": "2"}},
        "addons": ["Not A Plan", {"as": "lower"}, 5],
        "buildpacks": [{}, {"url": ""}],
        "scripts": {"postdeploy": 5},
    })
    assert errors == sorted(errors)
    expected = [
        "addons.0.plan: 'Not A Plan' is not an add-on plan",
        "addons.1.as: must be upper case letters",
        "addons.1.plan: Missing data for required field.",
        "addons.2",
        "buildpacks.0.url: Missing data for required field.",
        "buildpacks.1.url: Length must be between 1 and 1000.",
        "env.GEN.generator: the only generator is \"secret\"",
        "env.OBJ.value: must be a string",
        "env.REQ.required: Not a valid boolean.",
        "env.lower: lower is not a valid config var name",
        "formation.clock.quantity: Not a valid integer.",
        "formation.no spaces: no spaces is not a valid process type",
        "formation.web.quantity: must be a whole number from 0 to 100",
        "formation.web.size: 'huge' is not a dyno size",
        "formation.worker.quantity: Missing data for required field.",
        "name: Longer than maximum length 30.",
        "scripts.postdeploy: must be a command",
        "success_url: must be an absolute http(s) URL or a path starting with /",
    ]
    for start in expected:
        assert any(error.startswith(start) for error in errors), (start, errors)


@pytest.mark.parametrize("size", ["eco", "basic", "standard-1x", "Standard-2X", "performance-m", "performance-l",
                                  "private-s", "shield-l", "free", "hobby"])
def test_every_dyno_size_is_accepted(size: str) -> None:
    assert parse_manifest(json.dumps({"formation": {"web": {"quantity": 1, "size": size}}})).formation[
        "web"].size == size.lower()


@pytest.mark.parametrize("size", ["private-", "standard-3x", "large", ""])
def test_other_sizes_are_refused(size: str) -> None:
    assert errors_of({"formation": {"web": {"quantity": 1, "size": size}}})[0].startswith("formation.web.size: ")


def test_required_vars_are_met_by_the_app_the_overrides_or_the_manifest() -> None:
    manifest = parse_manifest(json.dumps({"env": {
        "GIVEN": "x", "MADE": {"generator": "secret"}, "OPTIONAL": {"required": False},
        "FROM_APP": {"description": "set on the app"}, "FROM_OVERRIDE": {}, "NOWHERE": {}, "ALSO_NOWHERE": {}}}))
    assert manifest.required_missing({"FROM_APP": "1"}, {"FROM_OVERRIDE": "2"}) == [
        "config var NOWHERE is required", "config var ALSO_NOWHERE is required"]
