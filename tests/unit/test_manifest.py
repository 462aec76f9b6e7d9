"""Manifest validation on push: every rule of specs/partner-api.md §1.6 and kensa's §6.1 list."""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from berth.broker.partner_api.manifest import ManifestError, load_manifest


def manifest() -> dict[str, Any]:
    return {
        "id": "acme-cache",
        "name": "Acme Cache",
        "api": {
            "version": "3",
            "config_vars_prefix": "ACME_CACHE",
            "config_vars": ["ACME_CACHE_URL", "ACME_CACHE_TLS_URL"],
            "password": "Zk29QpL7xV4mT8rW",
            "sso_salt": "p0Xc7Rr2Lm9Qw4Ev",
            "regions": ["us", "eu", "frankfurt"],
            "requires": ["syslog_drain", "log_input"],
            "production": {"base_url": "https://partners.acme.example/heroku/resources",
                           "sso_url": "https://partners.acme.example/heroku/sso"},
            "test": {"base_url": "http://localhost:5000/heroku/resources"},
        },
        "description": "A cache.",
        "categories": ["caching"],
        "plans": [
            {"name": "free", "price": {"cents": 0}, "default": True},
            {"name": "pro-2", "human_name": "Pro", "price": {"cents": 2500},
             "features": [{"name": "Memory", "value": "2 GB"}]},
        ],
    }


def refused(document: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(document, **kwargs)
    return caught.value.errors


def test_the_spec_example_loads_and_is_normalised() -> None:
    loaded = load_manifest(manifest())
    assert loaded["api"]["config_vars_prefix"] == "ACME_CACHE"
    assert loaded["plans"][0]["human_name"] == "Free" and loaded["plans"][1]["human_name"] == "Pro"
    assert loaded["plans"][0]["price"] == {"cents": 0, "unit": "month", "contract": False, "metered": False}
    assert loaded["state"] == "ga"


def test_defaults_prefix_from_id_and_legacy_production_url() -> None:
    document = manifest()
    del document["api"]["config_vars_prefix"]
    del document["api"]["sso_salt"]
    document["api"]["production"] = "https://partners.acme.example/heroku/resources"
    loaded = load_manifest(document)
    assert loaded["api"]["config_vars_prefix"] == "ACME_CACHE"
    assert loaded["api"]["production"] == {"base_url": "https://partners.acme.example/heroku/resources"}


Change = Callable[[dict[str, Any]], None]
RULES: list[tuple[str, Change, str]] = [
    ("id missing", lambda m: m.pop("id"), "id"),
    ("id not a string", lambda m: m.update(id=7), "id"),
    ("id blank", lambda m: m.update(id=""), "id"),
    ("id with capitals", lambda m: m.update(id="Acme-Cache"), "id"),
    ("id with punctuation", lambda m: m.update(id="acme_cache!"), "id"),
    ("api missing", lambda m: m.pop("api"), "api"),
    ("api not an object", lambda m: m.update(api="v3"), "api"),
    ("version 1", lambda m: m["api"].update(version="1"), "api.version"),
    ("regions not an array", lambda m: m["api"].update(regions="us"), "api.regions"),
    ("regions empty", lambda m: m["api"].update(regions=[]), "api.regions"),
    ("unknown region", lambda m: m["api"].update(regions=["us", "atlantis"]), "api.regions"),
    ("password missing", lambda m: m["api"].pop("password"), "api.password"),
    ("password too short", lambda m: m["api"].update(password="short"), "api.password"),
    ("password too long", lambda m: m["api"].update(password="x" * 73), "api.password"),
    ("username present", lambda m: m["api"].update(username="acme"), "api.username"),
    ("production missing", lambda m: m["api"].pop("production"), "api.production"),
    ("production over http", lambda m: m["api"]["production"].update(base_url="http://acme.example/r"),
     "api.production.base_url"),
    ("sso over http", lambda m: m["api"]["production"].update(sso_url="http://acme.example/sso"),
     "api.production.sso_url"),
    ("production not a URL", lambda m: m["api"]["production"].update(base_url="acme.example"),
     "api.production.base_url"),
    ("credentials in URL", lambda m: m["api"]["production"].update(base_url="https://u:p@acme.example/"),
     "api.production.base_url"),
    ("config_vars not an array", lambda m: m["api"].update(config_vars="ACME_CACHE_URL"), "api.config_vars"),
    ("config var lower-case", lambda m: m["api"].update(config_vars=["ACME_CACHE_url"]), "api.config_vars"),
    ("config var without prefix", lambda m: m["api"].update(config_vars=["REDIS_URL"]), "api.config_vars"),
    ("unknown requires flag", lambda m: m["api"].update(requires=["telepathy"]), "api.requires"),
    ("sso_url without salt", lambda m: m["api"].pop("sso_salt"), "api.sso_salt"),
    ("unknown api field", lambda m: m["api"].update(pasword="typo-typo"), "api.pasword"),
    ("unknown top-level field", lambda m: m.update(plan=[]), "plan"),
    ("no plans", lambda m: m.update(plans=[]), "plans"),
    ("two defaults", lambda m: m["plans"][1].update(default=True), "plans"),
    ("no default", lambda m: m["plans"][0].update(default=False), "plans"),
    ("duplicate plan", lambda m: m["plans"][1].update(name="free"), "plans"),
    ("bad plan slug", lambda m: m["plans"][1].update(name="Pro Plan"), "plans.1.name"),
    ("negative price", lambda m: m["plans"][1]["price"].update(cents=-1), "plans.1.price.cents"),
    ("price as text", lambda m: m["plans"][1]["price"].update(cents="25"), "plans.1.price.cents"),
    ("price per hour", lambda m: m["plans"][1]["price"].update(unit="hour"), "plans.1.price.unit"),
    ("unknown service state", lambda m: m.update(state="launched"), "state"),
]


@pytest.mark.parametrize("change,path", [(c, p) for _, c, p in RULES], ids=[n for n, _, _ in RULES])
def test_each_rule_is_enforced_with_a_message_on_its_field(change: Change, path: str) -> None:
    document = copy.deepcopy(manifest())
    change(document)
    errors = refused(document)
    assert path in errors and all(isinstance(m, str) and m for m in errors[path]), errors


def test_not_an_object_is_refused() -> None:
    assert refused(["id", "acme"]) == {"manifest": ["A manifest is a JSON object."]}


def test_http_to_loopback_is_allowed_for_local_partners() -> None:
    document = manifest()
    document["api"]["production"] = {"base_url": "http://127.0.0.1:9000/heroku/resources",
                                     "sso_url": "http://localhost:9000/sso"}
    assert load_manifest(document)["api"]["production"]["base_url"].startswith("http://127.0.0.1")


def test_wildcard_and_installation_regions() -> None:
    document = manifest()
    document["api"]["regions"] = ["*"]
    assert load_manifest(document)["api"]["regions"] == ["*"]
    document["api"]["regions"] = ["local"]
    assert "api.regions" in refused(document)
    assert load_manifest(document, known_regions=frozenset({"local"}))["api"]["regions"] == ["local"]


def test_id_is_permanent_and_stale_base_is_refused() -> None:
    previous = load_manifest({**manifest(), "$base": 100})
    renamed = {**manifest(), "id": "acme-cache-2"}
    renamed["api"] = {**renamed["api"], "config_vars_prefix": "ACME_CACHE"}
    assert "id" in refused(renamed, previous=previous)
    assert "$base" in refused({**manifest(), "$base": 99}, previous=previous)
    assert load_manifest({**manifest(), "$base": 100}, previous=previous)["base"] == 100


def test_errors_never_echo_the_password() -> None:
    document = manifest()
    document["api"]["password"] = "s3cret!"  # too short: refused
    errors = refused(document)
    assert "s3cret!" not in str(errors)
