"""Sources in S3 (a real versitygw) when BERTH_SLUG_STORE names a bucket: POST /sources answers
pre-signed URLs of the bucket, the client PUTs there without credentials, and a build's fetch reads
the blob with Berth's own credentials for its owner only. The fetcher takes exactly the configured
endpoint, bucket and source path as its own: any other object, bucket or port is a foreign URL and
refused (no request is made for it). Unused sources are collected after a day."""
from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from flask import Flask

from berth.config import Settings
from berth.platform.sources import SourceError, SourceFetcher
from berth.platform.sources.s3_store import S3SourceStore
from berth.platform.sources.store import UploadIncomplete, UploadTooLarge
from tests.conftest import Api, User, running_app
from tests.live_server import free_port
from tests.s3_server import S3Server
from tests.sources.test_sources_live import plugin_put

TARBALL = b"\x1f\x8b pretend tarball " * 1000
SHA = hashlib.sha256(TARBALL).hexdigest()


@pytest.fixture
def app(s3_settings: Settings) -> Iterator[Flask]:
    with running_app(s3_settings) as flask_app:
        yield flask_app


def new_source(api: Api, user: User) -> dict[str, str]:
    created = api.post("/sources", user)
    assert created.status_code == 201, created.get_json()
    return created.get_json()["source_blob"]


def keys(server: S3Server, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in server.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def with_path(url: str, path: str, port: int | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc if port is None else f"{parts.hostname}:{port}"
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def test_a_source_goes_to_the_bucket_through_its_presigned_url_and_back_to_its_owner(
        api: Api, alice: User, bob: User, s3_settings: Settings, s3_server: S3Server, s3_bucket: str,
        tmp_path: Path) -> None:
    blob = new_source(api, alice)
    for url in blob.values():
        assert url.startswith(f"{s3_server.endpoint}/{s3_bucket}/berth/sources/") and "X-Amz-Signature=" in url
    fetcher = SourceFetcher.from_settings(s3_settings)
    with pytest.raises(SourceError, match="Nothing was uploaded"):
        fetcher.check(blob["get_url"], account_id=alice.id)
    put = requests.put(blob["put_url"], data=TARBALL, headers={"Content-Type": ""}, timeout=30)
    assert put.status_code == 200, put.text
    assert requests.get(blob["get_url"], timeout=30).content == TARBALL  # as Heroku's S3 URLs do
    fetcher.check(blob["get_url"], f"SHA256:{SHA}", account_id=alice.id)
    got = fetcher.fetch(blob["get_url"], f"SHA256:{SHA}", account_id=alice.id, dest=tmp_path / "source.tgz")
    assert got.read_bytes() == TARBALL
    with pytest.raises(SourceError, match="another account"):
        fetcher.fetch(blob["get_url"], account_id=bob.id, dest=tmp_path / "bobs.tgz")
    with pytest.raises(SourceError, match="checksum does not match"):
        fetcher.fetch(blob["get_url"], "SHA256:" + "0" * 64, account_id=alice.id, dest=tmp_path / "bad.tgz")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["source.tgz"]


def test_only_the_configured_bucket_and_source_paths_count_as_own(
        api: Api, alice: User, s3_settings: Settings, s3_server: S3Server, s3_bucket: str) -> None:
    blob = new_source(api, alice)
    assert requests.put(blob["put_url"], data=TARBALL, headers={"Content-Type": ""}, timeout=30).status_code == 200
    source_id = urlsplit(blob["get_url"]).path.split("/")[-2]
    other_bucket = s3_server.new_bucket()
    fetcher = SourceFetcher.from_settings(s3_settings)
    foreign = [
        with_path(blob["get_url"], f"/{s3_bucket}/berth/sha256/aa/{'a' * 64}.tgz"),        # a slug, not a source
        with_path(blob["get_url"], f"/{s3_bucket}/berth/sources/{source_id}/record.json"),  # its record
        with_path(blob["get_url"], f"/{other_bucket}/berth/sources/{source_id}/blob"),      # another bucket
        with_path(blob["get_url"], f"/{s3_bucket}/berth/sources/{source_id}/../x/blob"),
        with_path(blob["get_url"], f"/{s3_bucket}/berth/sources/{source_id}%2fblob"),
        with_path(blob["get_url"], urlsplit(blob["get_url"]).path, port=free_port()),     # another port
    ]
    for url in foreign:
        with pytest.raises(SourceError, match="Berth does not fetch source from 127.0.0.1"):
            fetcher.check(url, account_id=alice.id)
    assert fetcher.s3 is not None and fetcher.s3.source_id_of(blob["get_url"]) == source_id


def test_a_build_with_an_s3_source_of_another_account_is_refused_422(api: Api, alice: User, bob: User) -> None:
    assert api.post("/apps", bob, json={"name": "bobs-app"}).status_code == 201
    blob = new_source(api, alice)
    assert requests.put(blob["put_url"], data=TARBALL, headers={"Content-Type": ""}, timeout=30).status_code == 200
    refused = api.post("/apps/bobs-app/builds", bob, json={"source_blob": {"url": blob["get_url"]}})
    assert refused.status_code == 422 and "another account" in refused.get_json()["message"]


def test_unused_s3_sources_are_collected_after_a_day(api: Api, alice: User, s3_settings: Settings,
                                                     s3_server: S3Server, s3_bucket: str) -> None:
    blob = new_source(api, alice)
    assert requests.put(blob["put_url"], data=TARBALL, headers={"Content-Type": ""}, timeout=30).status_code == 200
    store = S3SourceStore.of(s3_settings)
    assert store is not None
    assert store.collect() == [] and len([k for k in keys(s3_server, s3_bucket) if "/sources/" in k]) >= 2
    source_id = urlsplit(blob["get_url"]).path.split("/")[-2]
    assert store.collect(now=time.time() + 2 * 24 * 3600) == [source_id]
    assert [k for k in keys(s3_server, s3_bucket) if source_id in k] == []


def test_posting_a_source_while_the_store_is_down_answers_503(s3_settings: Settings) -> None:
    with running_app(s3_settings.with_overrides(s3_endpoint=f"http://127.0.0.1:{free_port()}")) as flask_app:
        api = Api(flask_app)
        user = api.make_user("stranded@example.com")
        started = time.monotonic()
        refused = api.post("/sources", user)
        assert refused.status_code == 503 and "could not be reached" in refused.get_json()["message"]
        assert time.monotonic() - started < 30


def test_the_heroku_cli_builds_plugins_upload_reaches_the_bucket(api: Api, alice: User, tmp_path: Path) -> None:
    """`heroku builds:create` PUTs with http-call, `Content-Type: ''` and a Content-Length: S3's
    pre-signed URL takes it as Berth's own put_url does."""
    blob = new_source(api, alice)
    tarball = tmp_path / "source.tgz"
    tarball.write_bytes(TARBALL * 200)  # a few MiB, past the API's 1 MiB body limit
    status, done = plugin_put(blob["put_url"], tarball)
    assert status == 200, done.stdout + done.stderr
    assert requests.get(blob["get_url"], timeout=30).content == tarball.read_bytes()


def test_a_pushed_source_is_received_into_the_bucket_whole_or_not_at_all(
        alice: User, s3_settings: Settings, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    store = S3SourceStore.of(s3_settings)
    assert store is not None
    record = store.create(alice.id)
    with pytest.raises(UploadTooLarge):
        store.receive(record, io.BytesIO(TARBALL), len(TARBALL), max_bytes=len(TARBALL) - 1)
    with pytest.raises(UploadIncomplete):
        store.receive(record, io.BytesIO(TARBALL[:100]), len(TARBALL), max_bytes=len(TARBALL))
    assert store.uploaded_size(record) is None
    store.receive(record, io.BytesIO(TARBALL + b"the next request"), len(TARBALL), max_bytes=len(TARBALL))
    fetched = SourceFetcher.from_settings(s3_settings).fetch(store.urls(record)["get_url"], f"SHA256:{SHA}",
                                                             account_id=alice.id, dest=tmp_path / "pushed.tgz")
    assert fetched.read_bytes() == TARBALL


def test_a_build_source_in_a_store_that_is_down_is_refused_with_a_message(s3_settings: Settings, alice: User,
                                                                          tmp_path: Path) -> None:
    down = s3_settings.with_overrides(s3_endpoint=f"http://127.0.0.1:{free_port()}")
    url = f"{down.s3_endpoint}/{down.slug_store[len('s3://'):]}/sources/e2603212-8f45-400d-86a9-758142475b99/blob"
    fetcher = SourceFetcher.from_settings(down)
    started = time.monotonic()
    for attempt in (lambda: fetcher.check(url, account_id=alice.id),
                    lambda: fetcher.fetch(url, account_id=alice.id, dest=tmp_path / "never.tgz")):
        with pytest.raises(SourceError, match="could not be reached"):
            attempt()
    assert time.monotonic() - started < 30 and list(tmp_path.iterdir()) == []
