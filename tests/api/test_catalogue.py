"""The add-on catalogue: partners push manifests; everyone reads services and plans."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.conftest import Api, User

REPO = Path(__file__).resolve().parents[2]
SECRET = "Zk29QpL7xV4mT8rW-partner-secret"
SALT = "p0Xc7Rr2Lm9Qw4Ev-sso-salt"


def manifest(**changes: Any) -> dict[str, Any]:
    document = {
        "id": "acme-cache", "name": "Acme Cache", "description": "A fast cache.",
        "categories": ["caching"],
        "api": {"version": "3", "config_vars": ["ACME_CACHE_URL"], "password": SECRET,
                "sso_salt": SALT, "regions": ["*"], "requires": ["attachable"],
                "production": {"base_url": "https://acme.example/heroku/resources",
                               "sso_url": "https://acme.example/sso"}},
        "plans": [{"name": "pro", "price": {"cents": 2500}, "features": [{"name": "Memory", "value": "2 GB"}]},
                  {"name": "free", "price": {"cents": 0}, "default": True}],
    }
    document.update(changes)
    return document


def push(api: Api, user: User, document: Any, slug: str = "acme-cache") -> Any:
    return api.post(f"/api/v3/addons/{slug}/manifests", user, json={"contents": document})


def test_partner_push_lists_the_service_and_its_plans(api: Api, alice: User, bob: User) -> None:
    response = push(api, alice, manifest())
    assert response.status_code == 201, response.get_json()
    service = response.get_json()
    assert service["name"] == "acme-cache" and service["human_name"] == "Acme Cache"
    assert service["supports_sharing"] is True and service["supports_multiple_installations"] is False
    assert service["default_plan"]["name"] == "acme-cache:free"
    listed = api.get("/addon-services", bob).get_json()
    assert [s["name"] for s in listed] == ["acme-cache"]
    assert api.get(f"/addon-services/{service['id']}", bob).get_json()["config_vars"] == ["ACME_CACHE_URL"]
    plans = api.get("/addon-services/acme-cache/plans", bob).get_json()
    assert [(p["name"], p["price"]["cents"], p["default"]) for p in plans] == [
        ("acme-cache:free", 0, True), ("acme-cache:pro", 2500, False)]
    assert plans[1]["features"] == [{"name": "Memory", "value": "2 GB"}]
    assert plans[1]["price"] == {"cents": 2500, "unit": "month", "contract": False, "metered": False}


def test_plans_by_id_slug_and_full_name(api: Api, alice: User) -> None:
    push(api, alice, manifest())
    pro = api.get("/plans/acme-cache:pro", alice).get_json()
    assert api.get(f"/plans/{pro['id']}", alice).get_json()["name"] == "acme-cache:pro"
    assert api.get("/addon-services/acme-cache/plans/pro", alice).get_json()["id"] == pro["id"]
    assert api.get(f"/addon-services/acme-cache/plans/{pro['id']}", alice).get_json()["id"] == pro["id"]
    for path in ("/plans/acme-cache:gold", "/plans/nothing:pro", "/addon-services/acme-cache/plans/gold"):
        response = api.get(path, alice)
        assert response.status_code == 404 and response.get_json()["resource"] == "plan", path
    missing = api.get("/addon-services/nothing", alice)
    assert missing.status_code == 404 and missing.get_json()["resource"] == "addon_service"


def test_secrets_never_reach_catalogue_readers_and_are_encrypted(api: Api, alice: User, bob: User) -> None:
    push(api, alice, manifest())
    for path in ("/addon-services", "/addon-services/acme-cache", "/addon-services/acme-cache/plans"):
        body = api.get(path, bob).get_data(as_text=True)
        assert SECRET not in body and SALT not in body
    with api.app.extensions["berth.database"].write_engine.connect() as connection:
        stored = json.dumps([list(r) for r in connection.execute(text("SELECT * FROM addon_services"))],
                            default=str)
    assert "acme-cache" in stored and SECRET not in stored and SALT not in stored


def test_only_the_owner_pulls_or_updates(api: Api, alice: User, bob: User) -> None:
    push(api, alice, manifest())
    pulled = api.get("/api/v3/addons/acme-cache/current_manifest", alice).get_json()["contents"]
    assert pulled["api"]["password"] == SECRET and pulled["$base"] == 1
    assert api.get("/api/v3/addons/acme-cache/current_manifest", bob).status_code == 404
    taken = push(api, bob, manifest(name="Hijacked"))
    assert taken.status_code == 422 and "already taken" in taken.get_json()["message"]
    assert api.get("/addon-services/acme-cache", bob).get_json()["human_name"] == "Acme Cache"


def test_update_replaces_plans_and_stale_pushes_are_refused(api: Api, alice: User) -> None:
    push(api, alice, manifest())
    pulled = api.get("/api/v3/addons/acme-cache/current_manifest", alice).get_json()["contents"]
    pulled["plans"] = [{"name": "free", "price": {"cents": 0}, "default": True},
                       {"name": "team", "price": {"cents": 9900}}]
    assert push(api, alice, pulled).status_code == 201
    assert [p["name"] for p in api.get("/addon-services/acme-cache/plans", alice).get_json()] == [
        "acme-cache:free", "acme-cache:team"]
    stale = push(api, alice, pulled)  # still carries $base 1; the service is at 2 now
    assert stale.status_code == 422 and "$base" in stale.get_json()["errors"]


def test_invalid_manifest_lists_errors_per_field_and_changes_nothing(api: Api, alice: User) -> None:
    push(api, alice, manifest())
    before = api.get("/addon-services/acme-cache/plans", alice).get_json()
    bad = copy.deepcopy(manifest())
    bad["api"]["regions"] = ["atlantis"]
    bad["api"]["production"]["base_url"] = "http://acme.example/r"
    bad["plans"] = [{"name": "x", "price": {"cents": -5}, "default": True}]
    response = push(api, alice, bad)
    assert response.status_code == 422 and response.get_json()["id"] == "invalid_params"
    errors = response.get_json()["errors"]
    assert {"api.production.base_url", "plans.0.price.cents"} <= set(errors)
    assert SECRET not in response.get_data(as_text=True)
    assert api.get("/addon-services/acme-cache/plans", alice).get_json() == before


def test_push_checks_the_url_slug_and_body_shape(api: Api, alice: User) -> None:
    assert push(api, alice, manifest(), slug="other-name").status_code == 422
    assert api.post("/api/v3/addons/acme-cache/manifests", alice, json=manifest()).status_code == 422
    assert push(api, alice, "not an object").status_code == 422
    assert api.get("/addon-services", alice).get_json() == []


def test_catalogue_needs_an_api_key(api: Api) -> None:
    assert api.get("/addon-services").status_code == 401


def test_operator_registers_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "acme.json").write_text(json.dumps(manifest()))
    env = {**os.environ, "BERTH_DATA_DIR": str(tmp_path / "data")}
    env.pop("BERTH_DATABASE_URL", None)
    run = lambda *args: subprocess.run([sys.executable, "-m", "berth.admin", *args], cwd=REPO, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    created = run("create-user", "partner@example.com")
    assert created.returncode == 0, created.stderr
    registered = run("register-addon", str(tmp_path / "acme.json"), "--owner", "partner@example.com")
    assert registered.returncode == 0, registered.stderr
    assert "acme-cache" in registered.stderr and SECRET not in registered.stdout + registered.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = run("register-addon", str(tmp_path / "bad.json"))
    assert bad.returncode != 0 and "not valid JSON" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "invalid.json").write_text(json.dumps(manifest(plans=[])))
    invalid = run("register-addon", str(tmp_path / "invalid.json"))
    assert invalid.returncode != 0 and "plans" in invalid.stderr
    # The partner account can now pull it: ownership was recorded.
    from berth import create_app
    from berth.config import load_settings
    app = create_app(load_settings({"BERTH_DATA_DIR": str(tmp_path / "data")}))
    key = created.stdout.strip()
    pulled = app.test_client().get("/api/v3/addons/acme-cache/current_manifest",
                                   headers={"Authorization": f"Bearer {key}"})
    assert pulled.status_code == 200 and pulled.get_json()["contents"]["id"] == "acme-cache"
