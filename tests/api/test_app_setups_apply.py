"""app.json applied to an app and undone, on SQLite and PostgreSQL: the one code path builds call
(berth.platform.app_setups.manifests), and POST/GET /app-setups at the edge."""
from __future__ import annotations

import io
import json
import tarfile
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select, text

from berth.config import Settings
from berth.platform import apps
from berth.platform.app_manifest import ManifestInvalid, parse_manifest
from berth.platform.app_setups.manifests import apply_manifest, undo
from berth.platform.app_setups.records import Overrides
from berth.platform.buildpack_installations import list_installations
from berth.platform.formation import formation_of
from berth.platform.models import App, AppSetup, ConfigVar
from tests.conftest import Api, User

MANIFEST = parse_manifest(json.dumps({
    "env": {"GREETING": "hello", "KEPT": "from app.json", "SECRET_KEY": {"generator": "secret"},
            "TOKEN": {"required": True}, "OPTIONAL": {"required": False}},
    "buildpacks": [{"url": "heroku/procfile"}],
    "formation": {"web": {"quantity": 2, "size": "basic"}, "worker": {"quantity": 1}}}))


def config_of(session, app: App) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {row.name: row.value for row in session.scalars(select(ConfigVar).where(ConfigVar.app_id == app.id))}


def test_apply_then_undo_leaves_the_app_as_it_was(app: Flask, api: Api, alice: User, settings: Settings) -> None:
    database = app.extensions["berth.database"]
    assert api.post("/apps", alice, json={"name": "applied"}).status_code == 201
    assert api.patch("/apps/applied/config-vars", alice, json={"KEPT": "mine", "TOKEN": "t"}).status_code == 200
    with database.transaction() as session:
        target = apps.get_app(session, alice.id, "applied")
        applied = apply_manifest(session, settings, target, target.owner, MANIFEST, Overrides(), new_app=False)
        config = config_of(session, target)
        assert config["GREETING"] == "hello" and config["KEPT"] == "mine" and config["TOKEN"] == "t"
        assert len(config["SECRET_KEY"]) == 64 and "OPTIONAL" not in config
        assert applied.config_vars == ["GREETING", "SECRET_KEY"]
        assert [row.url for row in list_installations(session, target)] == ["heroku/procfile"]
        assert {kind: (row.quantity, row.size) for kind, row in formation_of(session, target).items()} == {
            "web": (2, "basic"), "worker": (1, None)}
        undo(session, settings, target, target.owner, applied)
    with database.transaction() as session:
        target = apps.get_app(session, alice.id, "applied")
        assert config_of(session, target) == {"KEPT": "mine", "TOKEN": "t"}
        assert list_installations(session, target) == [] and formation_of(session, target) == {}


def test_overrides_win_and_a_new_app_takes_the_buildpacks(app: Flask, api: Api, alice: User,
                                                          settings: Settings) -> None:
    database = app.extensions["berth.database"]
    assert api.post("/apps", alice, json={"name": "overridden"}).status_code == 201
    with database.transaction() as session:
        target = apps.get_app(session, alice.id, "overridden")
        apply_manifest(session, settings, target, target.owner, MANIFEST,
                       Overrides({"TOKEN": "x", "GREETING": "hi"}, ["heroku/python"]), new_app=True)
        assert config_of(session, target)["GREETING"] == "hi"
        assert [row.url for row in list_installations(session, target)] == ["heroku/python"]


@pytest.mark.parametrize("manifest, overrides, error", [
    (MANIFEST, Overrides(), "config var TOKEN is required"),
    (parse_manifest('{"buildpacks": [{"url": "ftp://example.com/pack"}]}'), Overrides(), "buildpacks: Buildpack"),
    (parse_manifest('{"addons": ["no-such-service:plan"]}'), Overrides(),
     "addons.0: no-such-service:plan: Couldn't find"),
])
def test_what_the_app_cannot_take_is_a_manifest_error(app: Flask, api: Api, alice: User, settings: Settings,
                                                      manifest, overrides, error) -> None:  # type: ignore[no-untyped-def]
    database = app.extensions["berth.database"]
    assert api.post("/apps", alice, json={"name": "refusing"}).status_code == 201
    with database.transaction() as session:
        target = apps.get_app(session, alice.id, "refusing")
        with pytest.raises(ManifestInvalid) as caught:
            apply_manifest(session, settings, target, target.owner, manifest, overrides, new_app=True)
        assert caught.value.errors[0].startswith(error), caught.value.errors


def test_setups_are_refused_at_the_edge_and_private_to_their_caller(app: Flask, api: Api, alice: User,
                                                                   bob: User) -> None:
    blob = api.post("/sources", alice).get_json()["source_blob"]
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("app/README"), io.BytesIO(b""))
    assert api.client.put(urlsplit(blob["put_url"]).path, data=tarball.getvalue()).status_code == 200
    assert api.post("/apps", alice, json={"name": "taken-here"}).status_code == 201
    for body, says in [({}, "source_blob"),
                       ({"source_blob": {"url": "http://169.254.169.254/"}}, "BERTH_SOURCE_HOSTS"),
                       ({"source_blob": {"url": blob["get_url"]}, "app": {"name": "taken-here"}}, "already taken"),
                       ({"source_blob": {"url": blob["get_url"]}, "overrides": {"env": {"x": "1"}}}, "x"),
                       ({"source_blob": {"url": blob["get_url"]}, "app": {"space": "s", "nope": 1}}, "nope")]:
        refused = api.post("/app-setups", alice, json=body)
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["id"] == "invalid_params" and says in refused.get_json()["message"]
    with app.extensions["berth.database"].session(write=False) as session:
        assert session.scalar(select(AppSetup.id)) is None  # nothing recorded

    created = api.post("/app-setups", alice, json={"source_blob": {"url": blob["get_url"]},
                                                   "overrides": {"env": {"TOKEN": "secret-value"}}})
    assert created.status_code == 202, created.get_json()
    setup = created.get_json()
    assert setup["status"] == "pending" and setup["build"]["status"] == "pending"
    assert "secret-value" not in json.dumps(setup)
    assert api.get(f"/app-setups/{setup['id']}", alice).get_json()["app"] == setup["app"]
    hidden = api.get(f"/app-setups/{setup['id']}", bob)
    assert hidden.status_code == 404 and hidden.get_json()["id"] == "not_found"
    assert api.get("/app-setups/not-a-uuid", alice).status_code == 404
    with app.extensions["berth.database"].session(write=False) as session:  # overrides are encrypted at rest
        raw = session.execute(text("SELECT overrides FROM app_setups")).scalar_one()
        assert "secret-value" not in raw
