"""Slugs through the API (create, upload to the self-authorising blob URL, read) and the releases
that carry them: release an uploaded slug, roll back to an earlier release's slug and config."""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from berth import signed_urls
from berth.platform import config_vars
from berth.platform.models import App
from tests.conftest import Api, User


def slug_tarball(marker: str) -> bytes:
    """The same bytes for the same marker (gzip's header time fixed), as one build's tarball is."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as tar:
        data = f"web: echo {marker}\n".encode()
        info = tarfile.TarInfo("./app/Procfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return "SHA256:" + hashlib.sha256(data).hexdigest()


def path_of(url: str) -> str:
    assert url.startswith("http://127.0.0.1:5000/slug-blobs/"), url
    return url[len("http://127.0.0.1:5000"):]


@pytest.fixture
def app_name(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "shipping"}).status_code == 201
    return "shipping"


def create_slug(api: Api, user: User, app: str, **body: Any) -> dict[str, Any]:
    created = api.post(f"/apps/{app}/slugs", user, json={"process_types": {"web": "bin/serve"}, **body})
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def upload(api: Api, slug: dict[str, Any], data: bytes) -> Any:
    # As curl -X PUT -H "Content-Type:" --data-binary @slug.tgz "$url" sends it: no API key.
    return api.client.put(path_of(slug["blob"]["url"]), data=data, headers={"Content-Type": ""})


def uploaded_slug(api: Api, user: User, app: str, marker: str, **body: Any) -> dict[str, Any]:
    slug = create_slug(api, user, app, **body)
    stored = upload(api, slug, slug_tarball(marker))
    assert stored.status_code == 200, stored.get_json()
    return stored.get_json()


def test_a_slug_is_created_uploaded_without_a_key_and_read_back(api: Api, alice: User, app_name: str,
                                                                app: Flask) -> None:
    data = slug_tarball("one")
    slug = create_slug(api, alice, app_name, commit="0123456789abcdef", commit_description="first",
                       buildpack_provided_description="Python", checksum=sha256(data).upper().replace("SHA256", "sha256"))
    assert slug["blob"]["method"] == "PUT" and slug["size"] is None
    assert slug["process_types"] == {"web": "bin/serve"} and slug["stack"]["name"] == "berth-bookworm"
    stored = upload(api, slug, data)
    assert stored.status_code == 200, stored.get_json()
    assert stored.get_json()["checksum"] == sha256(data) and stored.get_json()["size"] == len(data)
    shown = api.get(f"/apps/{app_name}/slugs/{slug['id']}", alice).get_json()
    assert shown["checksum"] == sha256(data) and shown["blob"]["method"] == "GET"
    assert shown["commit"] == "0123456789abcdef" and shown["buildpack_provided_description"] == "Python"
    downloaded = api.client.get(path_of(shown["blob"]["url"]))
    assert downloaded.status_code == 200 and downloaded.data == data
    again = upload(api, slug, data)  # a slug never changes
    assert again.status_code == 409 and again.get_json()["id"] == "conflict"
    blob = app.config["BERTH_SETTINGS"].data_dir / "slugs" / "sha256" / sha256(data)[7:9] / f"{sha256(data)[7:]}.tgz"
    blob.write_bytes(data[:-1] + b"!")  # altered on disk: checked before every use, never served
    altered = api.client.get(path_of(shown["blob"]["url"]))
    assert altered.status_code == 500 and "failed its checksum check" in altered.get_json()["message"]
    blob.unlink()
    assert api.client.get(path_of(shown["blob"]["url"])).status_code == 410


def test_slug_bad_paths_are_refused_in_herokus_shape(api: Api, alice: User, bob: User, app_name: str) -> None:
    for body, field in [({}, "process_types"), ({"process_types": {"we b": "x"}}, "process_types"),
                        ({"process_types": {}, "checksum": "md5:abc"}, "checksum"),
                        ({"process_types": {}, "stack": "cedar-10"}, "stack")]:
        refused = api.post(f"/apps/{app_name}/slugs", alice, json=body)
        assert refused.status_code == 422 and refused.get_json()["id"] == "invalid_params", body
        assert field in refused.get_json()["message"] or "stack" in refused.get_json()["message"]
    assert api.post(f"/apps/{app_name}/slugs", bob, json={"process_types": {}}).status_code == 404
    slug = create_slug(api, alice, app_name)
    assert api.get(f"/apps/{app_name}/slugs/{slug['id']}", bob).status_code == 404
    assert api.post("/apps", bob, json={"name": "bobs-app"}).status_code == 201
    theirs = api.get(f"/apps/bobs-app/slugs/{slug['id']}", bob)  # another app's slug: as if absent
    assert theirs.status_code == 404 and theirs.get_json()["resource"] == "slug"
    assert api.get(f"/apps/{app_name}/slugs/not-a-uuid", alice).status_code == 404


def test_an_upload_with_a_bad_checksum_is_refused_and_stores_nothing(api: Api, alice: User, app_name: str,
                                                                     app: Flask) -> None:
    slug = create_slug(api, alice, app_name, checksum=sha256(b"something else"))
    data = slug_tarball("bad-checksum")
    refused = upload(api, slug, data)
    assert refused.status_code == 422 and "Checksum mismatch" in refused.get_json()["message"]
    hexdigest = sha256(data).split(":")[1]
    store = app.config["BERTH_SETTINGS"].data_dir / "slugs"
    assert not (store / "sha256" / hexdigest[:2] / f"{hexdigest}.tgz").exists()
    assert not list((store / "tmp").iterdir())
    shown = api.get(f"/apps/{app_name}/slugs/{slug['id']}", alice).get_json()
    assert shown["size"] is None and shown["blob"]["method"] == "PUT"
    not_gzip = upload(api, slug, b"PK\x03\x04 a zip file")
    assert not_gzip.status_code == 422 and "gzip" in not_gzip.get_json()["message"]


def test_an_oversize_upload_is_refused_in_herokus_words(api: Api, alice: User, app_name: str, app: Flask) -> None:
    app.config["BERTH_SETTINGS"] = app.config["BERTH_SETTINGS"].with_overrides(slug_max_bytes=2 * 1024 * 1024)
    slug = create_slug(api, alice, app_name)
    big = b"\x1f\x8b" + bytes(3 * 1024 * 1024)
    refused = upload(api, slug, big)
    assert refused.status_code == 413
    assert refused.get_json() == {"id": "request_entity_too_large",
                                  "message": "Compiled slug size: 3.0M is too large (max is 2M)."}

    # No Content-Length (chunked, as a proxy may send it): refused as it streams past the limit.
    streamed = api.client.put(path_of(slug["blob"]["url"]), input_stream=io.BytesIO(big),
                              headers={"Content-Type": ""}, environ_overrides={"wsgi.input_terminated": True})
    assert streamed.status_code == 413 and "is too large (max is 2M)" in streamed.get_json()["message"]
    assert api.get(f"/apps/{app_name}/slugs/{slug['id']}", alice).get_json()["size"] is None


def test_forged_expired_and_wrong_purpose_blob_urls_are_refused(api: Api, alice: User, app_name: str) -> None:
    slug = create_slug(api, alice, app_name)
    token = path_of(slug["blob"]["url"]).rsplit("/", 1)[1]
    expired = signed_urls.sign("slug:put", slug["id"], ttl_seconds=60, now=time.time() - 3600)
    downloading = signed_urls.sign("slug:get", slug["id"], ttl_seconds=60)
    for forged in [token[:-2] + ("AA" if not token.endswith("AA") else "BB"), expired, downloading, "x"]:
        refused = api.client.put(f"/slug-blobs/{forged}", data=slug_tarball("x"), headers={"Content-Type": ""})
        assert refused.status_code == 403 and refused.get_json()["id"] == "forbidden", forged
        assert "invalid or has expired" in refused.get_json()["message"]


def releases_of(api: Api, user: User, app: str) -> list[dict[str, Any]]:
    return api.get(f"/apps/{app}/releases", user).get_json()


def test_releasing_an_uploaded_slug_makes_a_current_release_with_the_config(api: Api, alice: User, bob: User,
                                                                           app_name: str) -> None:
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"GREETING": "hi"})
    slug = uploaded_slug(api, alice, app_name, "one", commit="abcdef0123456789")
    made = api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    assert made.status_code == 201, made.get_json()
    release = made.get_json()
    assert release["description"] == "Deploy abcdef0" and release["slug"] == {"id": slug["id"]}
    assert release["current"] is True and release["status"] == "succeeded"
    assert api.get(f"/apps/{app_name}/releases/{release['version']}/config-vars", alice).get_json() == {"GREETING": "hi"}
    described = api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"], "description": "hotfix"})
    assert described.get_json()["description"] == "hotfix"
    # Refusals change nothing.
    count = len(releases_of(api, alice, app_name))
    pending = create_slug(api, alice, app_name)
    not_uploaded = api.post(f"/apps/{app_name}/releases", alice, json={"slug": pending["id"]})
    assert not_uploaded.status_code == 422 and "PUT the slug tarball" in not_uploaded.get_json()["message"]
    unknown = api.post(f"/apps/{app_name}/releases", alice, json={"slug": "5b0c2a4e-0000-4000-8000-000000000000"})
    assert unknown.status_code == 404 and unknown.get_json()["resource"] == "slug"
    assert api.post("/apps", bob, json={"name": "bobs-app"}).status_code == 201
    other = api.post("/apps/bobs-app/releases", bob, json={"slug": slug["id"]})  # alice's slug, bob's app
    assert other.status_code == 404
    for body in [{}, {"slug": slug["id"], "release": "1"}, {"slug": 5}]:
        assert api.post(f"/apps/{app_name}/releases", alice, json=body).status_code == 422, body
    assert len(releases_of(api, alice, app_name)) == count


def test_rollback_restores_the_old_slug_and_config_as_a_new_release(api: Api, alice: User, app_name: str) -> None:
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"MODE": "old", "GONE_LATER": "1"})
    first = uploaded_slug(api, alice, app_name, "one")
    old = api.post(f"/apps/{app_name}/releases", alice, json={"slug": first["id"]}).get_json()
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"MODE": "new", "GONE_LATER": None, "ADDED": "x"})
    second = uploaded_slug(api, alice, app_name, "two")
    api.post(f"/apps/{app_name}/releases", alice, json={"slug": second["id"]})
    listed = releases_of(api, alice, app_name)
    assert all(r["eligible_for_rollback"] for r in listed)  # the current one too: the CLI skips it
    rolled = api.post(f"/apps/{app_name}/releases", alice, json={"release": f"v{old['version']}"})
    assert rolled.status_code == 201, rolled.get_json()
    body = rolled.get_json()
    assert body["description"] == f"Rollback to v{old['version']}" and body["slug"] == {"id": first["id"]}
    assert body["current"] is True and body["version"] == listed[-1]["version"] + 1
    assert api.get(f"/apps/{app_name}/config-vars", alice).get_json() == {"MODE": "old", "GONE_LATER": "1"}
    assert api.get(f"/apps/{app_name}/releases/{body['version']}/config-vars", alice).get_json() == \
        {"MODE": "old", "GONE_LATER": "1"}
    by_id = api.post(f"/apps/{app_name}/releases", alice, json={"release": listed[-1]["id"]}).get_json()
    assert by_id["slug"] == {"id": second["id"]} and by_id["description"] == f"Rollback to v{listed[-1]['version']}"
    missing = api.post(f"/apps/{app_name}/releases", alice, json={"release": "v999"})
    assert missing.status_code == 404 and missing.get_json()["resource"] == "release"


def test_a_config_change_after_a_deploy_carries_the_deployed_slug(api: Api, alice: User, app_name: str) -> None:
    slug = uploaded_slug(api, alice, app_name, "one")
    api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"LATER": "1"})
    newest = api.get(f"/apps/{app_name}/releases", alice, headers={"Range": "version ..; order=desc,max=1"}).get_json()[0]
    assert newest["description"] == "Set LATER config vars" and newest["slug"] == {"id": slug["id"]}
    first = api.get(f"/apps/{app_name}/releases/1", alice).get_json()
    assert first["slug"] is None  # before any code: none


def test_an_app_with_released_slugs_can_be_destroyed(api: Api, alice: User, app_name: str) -> None:
    slug = uploaded_slug(api, alice, app_name, "one")
    api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"A": "1"})
    destroyed = api.delete(f"/apps/{app_name}", alice)
    assert destroyed.status_code == 200, destroyed.get_json()
    assert api.get(f"/apps/{app_name}", alice).status_code == 404


def test_rollback_leaves_add_on_vars_as_they_are_now(api: Api, alice: User, app_name: str, app: Flask) -> None:
    database = app.extensions["berth.database"]

    def attach(values: dict[str, str]) -> None:  # what an add-on attachment does to the app's config
        with database.transaction() as session:
            shipping = session.scalars(select(App).where(App.name == app_name)).one()
            config_vars.set_owned_config(session, shipping, "attachment-1", values, None, "Update DATABASE")
    attach({"DATABASE_URL": "postgres://old-password@db/x"})
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"MODE": "one"})
    first = uploaded_slug(api, alice, app_name, "one")
    old = api.post(f"/apps/{app_name}/releases", alice, json={"slug": first["id"]}).get_json()
    attach({"DATABASE_URL": "postgres://rotated-password@db/x"})  # credentials rotated since
    api.patch(f"/apps/{app_name}/config-vars", alice, json={"MODE": "two"})
    rolled = api.post(f"/apps/{app_name}/releases", alice, json={"release": old["id"]})
    assert rolled.status_code == 201, rolled.get_json()
    expected = {"MODE": "one", "DATABASE_URL": "postgres://rotated-password@db/x"}
    assert api.get(f"/apps/{app_name}/config-vars", alice).get_json() == expected
    assert api.get(f"/apps/{app_name}/releases/{rolled.get_json()['version']}/config-vars", alice).get_json() == expected
    still_owned = api.patch(f"/apps/{app_name}/config-vars", alice, json={"DATABASE_URL": "x"})
    assert still_owned.status_code == 409  # still the attachment's, not turned into a user var
