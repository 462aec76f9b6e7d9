"""Dynos from slugs kept in S3 (a real versitygw): a dyno starts from the verified slug; a slug
altered in the bucket is refused before anything is unpacked."""
from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest

from berth.config import load_settings
from berth.platform.dynos.backend import DynoError, DynoSpec
from berth.platform.slug_store import SlugStore, slug_store_of
from berth.platform.slugs import pack
from tests.s3_server import S3Server

from .conftest import eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def store(s3_server: S3Server, bucket: str, data_dir: Path) -> SlugStore:
    env = {"BERTH_DATA_DIR": str(data_dir), **{f"BERTH_{k}": v for k, v in s3_server.settings(bucket).items()}}
    return slug_store_of(load_settings(env))


def test_a_dyno_starts_from_a_slug_in_s3(backend, checksum, s3_server: S3Server, bucket: str) -> None:
    listed = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item["Key"] for item in listed] == [f"sha256/{checksum[7:9]}/{checksum[7:]}.tgz"]
    status = backend.start(DynoSpec(app_id=str(uuid.uuid4()), name="web.1", slug_checksum=checksum, web=True,
                                    command='exec python3 -m http.server "$PORT"'))
    eventually(lambda: backend.status(status.id).state == "up", what="web.1 up")
    with urllib.request.urlopen(f"http://{status.address}/index.html", timeout=10) as response:
        assert response.read() == b"hello from the slug\n"
    backend.stop(status.id, grace=1)


def test_a_slug_altered_in_the_bucket_is_refused(backend, store: SlugStore, s3_server: S3Server, bucket: str,
                                                 tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "index.html").write_text("the real one\n")
    packed = pack(app, tmp_path / "slug.tgz")
    checksum = store.put(packed.path, packed.checksum)
    (app / "index.html").write_text("a planted one\n")
    planted = pack(app, tmp_path / "planted.tgz")
    s3_server.client().put_object(Bucket=bucket, Key=f"sha256/{checksum[7:9]}/{checksum[7:]}.tgz",
                                  Body=planted.path.read_bytes())
    with pytest.raises(DynoError, match="Checksum mismatch"):
        backend.start(DynoSpec(app_id=str(uuid.uuid4()), name="web.1", slug_checksum=checksum, web=True,
                               command='exec python3 -m http.server "$PORT"'))
    assert not (backend.slugs / checksum).exists()
