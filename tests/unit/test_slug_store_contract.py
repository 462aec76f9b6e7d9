"""The SlugStore contract, run against both stores: the local one and S3 (a real versitygw).
Content-addressed, every read verified, a wrong expected checksum leaves nothing, `stored` lists
what is there with its time, `delete` removes."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from berth.config import load_settings
from berth.platform.slug_store import StorageUnavailable
from berth.platform.slug_store import LocalSlugStore, MissingSlug, SlugStore, slug_store_of, unpack_slug
from berth.platform.slugs import ChecksumMismatch, SlugError
from tests.live_server import free_port
from tests.s3_server import S3Server


def s3_store(server: S3Server, bucket: str, tmp_path: Path, prefix: str = "slugs") -> SlugStore:
    env = {"BERTH_DATA_DIR": str(tmp_path / "data"), **{f"BERTH_{k}": v for k, v in
                                                         server.settings(bucket, prefix).items()}}
    return slug_store_of(load_settings(env))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SlugStore:
    if request.param == "local":
        return LocalSlugStore(tmp_path / "store")
    server: S3Server = request.getfixturevalue("s3_server")
    return s3_store(server, server.new_bucket(), tmp_path)


def slug_bytes(text: str = "web: bin/serve\n", padding: int = 0) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, content in (("app/Procfile", text.encode()), ("app/padding", os.urandom(padding))):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return data.getvalue()


def sha(data: bytes) -> str:
    return "SHA256:" + hashlib.sha256(data).hexdigest()


def stored_objects(server: S3Server, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in server.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def test_put_open_exists_stored_delete(store: SlugStore, tmp_path: Path) -> None:
    data = slug_bytes()
    path = tmp_path / "slug.tgz"
    path.write_bytes(data)
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert store.put(path) == sha(data)
    assert store.put(path, sha(data).upper().replace("SHA256:", "SHA256:", 1)) == sha(data)  # stored once
    assert store.exists(sha(data))
    with store.open(sha(data)) as stream:
        assert stream.read() == data
    listed = list(store.stored())
    assert [checksum for checksum, _ in listed] == [sha(data)]
    assert before <= listed[0][1] <= datetime.now(timezone.utc) + timedelta(seconds=5)
    target = tmp_path / "unpacked"
    unpack_slug(store, sha(data), target)
    assert (target / "Procfile").read_text() == "web: bin/serve\n"
    store.delete(sha(data))
    store.delete(sha(data))  # absent is fine
    assert not store.exists(sha(data)) and list(store.stored()) == []
    with pytest.raises(MissingSlug, match="no longer stored"):
        store.open(sha(data))
    with pytest.raises(SlugError, match="Not a slug checksum"):
        store.open("SHA256:../../etc/passwd")


def test_a_wrong_expected_checksum_stores_nothing(store: SlugStore) -> None:
    data = slug_bytes()
    with pytest.raises(ChecksumMismatch):
        store.put_stream(io.BytesIO(data), "SHA256:" + "0" * 64)
    assert list(store.stored()) == [] and not store.exists(sha(data))
    assert store.put_stream(io.BytesIO(data), sha(data)) == sha(data)


def test_a_big_slug_goes_up_in_parts_and_comes_back_whole(store: SlugStore) -> None:
    data = slug_bytes(padding=20 * 1024 * 1024)  # past the 8 MiB multipart threshold
    assert store.put_stream(io.BytesIO(data)) == sha(data)
    with store.open(sha(data)) as stream:
        assert hashlib.sha256(stream.read()).hexdigest() == sha(data)[7:]


def test_a_tampered_s3_object_is_refused_on_open(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    store = s3_store(s3_server, s3_bucket, tmp_path)
    data = slug_bytes()
    checksum = store.put_stream(io.BytesIO(data))
    key = f"slugs/sha256/{checksum[7:9]}/{checksum[7:]}.tgz"
    assert stored_objects(s3_server, s3_bucket) == [key]  # no staging object left behind
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=slug_bytes("web: evil\n"))
    with pytest.raises(ChecksumMismatch):
        store.open(checksum)
    with pytest.raises(ChecksumMismatch):
        unpack_slug(store, checksum, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    assert list((tmp_path / "data" / "tmp").iterdir()) == []  # the spooled copy is gone too


def test_a_wrong_checksum_leaves_no_object_in_the_bucket(s3_server: S3Server, s3_bucket: str,
                                                         tmp_path: Path) -> None:
    store = s3_store(s3_server, s3_bucket, tmp_path)
    with pytest.raises(ChecksumMismatch):
        store.put_stream(io.BytesIO(slug_bytes(padding=10 * 1024 * 1024)), "SHA256:" + "1" * 64)
    assert stored_objects(s3_server, s3_bucket) == []


def test_the_store_setting_switches_every_user_and_hides_the_secret(s3_server: S3Server, s3_bucket: str,
                                                                    tmp_path: Path) -> None:
    settings = load_settings({"BERTH_DATA_DIR": str(tmp_path), **{f"BERTH_{k}": v for k, v in
                                                                   s3_server.settings(s3_bucket).items()}})
    assert s3_server.secret_key not in repr(settings) and s3_server.secret_key not in repr(slug_store_of(settings))
    assert isinstance(slug_store_of(load_settings({"BERTH_DATA_DIR": str(tmp_path)})), LocalSlugStore)
    for bad in ("s3://", "s3://UPPER", "ftp://bucket", "s3://a"):
        with pytest.raises(ValueError, match="BERTH_SLUG_STORE"):
            load_settings({"BERTH_DATA_DIR": str(tmp_path), "BERTH_SLUG_STORE": bad})
    for bad in ("127.0.0.1:7070", "ftp://host", "http://user:pw@host", "http://host?x=1"):
        with pytest.raises(ValueError, match="BERTH_S3_ENDPOINT"):
            load_settings({"BERTH_DATA_DIR": str(tmp_path), "BERTH_S3_ENDPOINT": bad})


def test_an_s3_server_that_is_down_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    env: dict[str, Any] = {"BERTH_DATA_DIR": str(tmp_path), "BERTH_SLUG_STORE": "s3://nowhere",
                           "BERTH_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}", "BERTH_S3_ACCESS_KEY_ID": "k",
                           "BERTH_S3_SECRET_ACCESS_KEY": "very-secret"}
    store = slug_store_of(load_settings(env))
    for attempt in (lambda: store.put_stream(io.BytesIO(b"x")), lambda: store.open(sha(b"x")),
                    lambda: store.exists(sha(b"x")), lambda: list(store.stored())):
        with pytest.raises(StorageUnavailable, match="could not be reached") as refused:
            attempt()
        assert "very-secret" not in str(refused.value) and "nowhere" in str(refused.value)
