"""Slugs in S3 (a real versitygw): a slug's blob URL is a pre-signed PUT straight to the bucket, and
what arrives there is hashed by Berth when the slug is released (a declared checksum is checked,
never trusted); retention deletes the objects no slug names; a store that is down answers 503."""
from __future__ import annotations

import io
import time
from datetime import timedelta
from typing import Any, Iterator

import pytest
import requests
from flask import Flask

from berth.config import Settings
from berth.db import utcnow
from berth.platform.slug_retention import sweep_slugs
from berth.platform.slug_store import slug_store_of
from tests.api.test_slugs import create_slug, sha256, slug_tarball
from tests.conftest import Api, User, running_app
from tests.live_server import free_port
from tests.s3_server import S3Server


@pytest.fixture
def app(s3_settings: Settings) -> Iterator[Flask]:
    with running_app(s3_settings) as flask_app:
        yield flask_app


@pytest.fixture
def app_name(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "shipping"}).status_code == 201
    return "shipping"


def keys(server: S3Server, bucket: str, under: str) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=bucket, Prefix=f"berth/{under}")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def put_presigned(slug: dict[str, Any], data: bytes) -> requests.Response:
    # As curl -X PUT -H "Content-Type:" --data-binary @slug.tgz "$url" sends it: no credentials.
    return requests.put(slug["blob"]["url"], data=data, headers={"Content-Type": ""}, timeout=30)


def test_a_slug_put_to_its_presigned_url_is_verified_and_moved_when_released(
        api: Api, alice: User, app_name: str, s3_server: S3Server, s3_bucket: str) -> None:
    data = slug_tarball("s3")
    slug = create_slug(api, alice, app_name, checksum=sha256(data))
    assert slug["blob"]["method"] == "PUT" and slug["blob"]["url"].startswith(s3_server.endpoint + f"/{s3_bucket}/")
    assert put_presigned(slug, data).status_code == 200
    assert keys(s3_server, s3_bucket, "uploads/") == [f"berth/uploads/{slug['id']}.tgz"]
    released = api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    assert released.status_code == 201, released.get_json()
    shown = api.get(f"/apps/{app_name}/slugs/{slug['id']}", alice).get_json()
    assert shown["checksum"] == sha256(data) and shown["size"] == len(data) and shown["blob"]["method"] == "GET"
    assert keys(s3_server, s3_bucket, "uploads/") == []
    assert keys(s3_server, s3_bucket, "sha256/") == [f"berth/sha256/{sha256(data)[7:9]}/{sha256(data)[7:]}.tgz"]
    got = api.client.get(shown["blob"]["url"][len("http://127.0.0.1:5000"):])
    assert got.status_code == 200 and got.data == data


def test_a_presigned_upload_unlike_its_declared_checksum_is_refused_at_release(
        api: Api, alice: User, app_name: str, s3_server: S3Server, s3_bucket: str) -> None:
    declared = slug_tarball("what the client said")
    slug = create_slug(api, alice, app_name, checksum=sha256(declared))
    assert put_presigned(slug, slug_tarball("what it sent")).status_code == 200
    refused = api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    assert refused.status_code == 422 and "Checksum mismatch" in refused.get_json()["message"], refused.get_json()
    assert keys(s3_server, s3_bucket, "") == []  # neither the upload nor a blob is kept
    assert [r["description"] for r in api.get(f"/apps/{app_name}/releases", alice).get_json()] == ["Initial release"]
    assert api.get(f"/apps/{app_name}/slugs/{slug['id']}", alice).get_json()["size"] is None
    # The client may PUT again (the right bytes) and release.
    assert put_presigned(slug, declared).status_code == 200
    assert api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]}).status_code == 201


def test_a_presigned_upload_that_is_not_gzip_is_refused_at_release(api: Api, alice: User, app_name: str) -> None:
    slug = create_slug(api, alice, app_name)
    assert put_presigned(slug, b"#!/bin/sh\nrm -rf /\n").status_code == 200
    refused = api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    assert refused.status_code == 422 and "gzip-compressed tarball" in refused.get_json()["message"]
    nothing = api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]})
    assert nothing.status_code == 422 and "has no code yet" in nothing.get_json()["message"]


def test_retention_deletes_s3_objects_no_slug_names(api: Api, alice: User, app_name: str, app: Flask,
                                                    s3_server: S3Server, s3_bucket: str) -> None:
    kept = slug_tarball("kept")
    slug = create_slug(api, alice, app_name)
    assert put_presigned(slug, kept).status_code == 200
    assert api.post(f"/apps/{app_name}/releases", alice, json={"slug": slug["id"]}).status_code == 201
    store = slug_store_of(app.config["BERTH_SETTINGS"])
    orphan = store.put_stream(io.BytesIO(slug_tarball("orphan")))  # an app destroyed meanwhile
    abandoned = create_slug(api, alice, app_name)
    assert put_presigned(abandoned, slug_tarball("never released")).status_code == 200
    s3_server.client().put_object(Bucket=s3_bucket, Key="berth/tmp/crashed-put.part", Body=b"half a slug")
    database = app.extensions["berth.database"]

    sweep_slugs(database, store)  # all of it is younger than a day: kept
    assert store.exists(orphan) and len(keys(s3_server, s3_bucket, "uploads/")) == 1
    assert keys(s3_server, s3_bucket, "tmp/") == ["berth/tmp/crashed-put.part"]

    sweep_slugs(database, store, now=utcnow() + timedelta(days=2))
    assert not store.exists(orphan) and store.exists(sha256(kept))
    assert keys(s3_server, s3_bucket, "uploads/") == [] and keys(s3_server, s3_bucket, "tmp/") == []
    assert keys(s3_server, s3_bucket, "sha256/") == [f"berth/sha256/{sha256(kept)[7:9]}/{sha256(kept)[7:]}.tgz"]


def test_a_slug_store_that_is_down_answers_503_with_a_message_not_a_hang(s3_settings: Settings,
                                                                          s3_server: S3Server) -> None:
    down = s3_settings.with_overrides(s3_endpoint=f"http://127.0.0.1:{free_port()}")
    with running_app(down) as flask_app:
        api = Api(flask_app)
        user = api.make_user("down@example.com")
        assert api.post("/apps", user, json={"name": "stranded"}).status_code == 201
        slug = create_slug(api, user, "stranded")
        started = time.monotonic()
        refused = api.post("/apps/stranded/releases", user, json={"slug": slug["id"]})
        assert refused.status_code == 503, refused.get_json()
        assert refused.get_json()["id"] == "service_unavailable"
        assert "could not be reached" in refused.get_json()["message"]
        assert s3_server.secret_key not in refused.get_data(as_text=True)
        assert time.monotonic() - started < 30
