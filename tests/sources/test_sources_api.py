"""POST /sources and its self-authorising blob URLs, through the app (Flask's client): the upload
as the Heroku CLI sends it, and every way to misuse the URLs."""
from __future__ import annotations

import hashlib
import io
import tarfile
import time
from pathlib import Path

import pytest

from berth import signed_urls
from berth.config import Settings
from berth.platform.sources import SourceError, SourceFetcher, extract, limits_from
from berth.platform.sources.urls import GET, PUT
from tests.conftest import Api, User

CLI_UPLOAD = {"Content-Type": ""}  # what the builds plugin sends: no Authorization, Content-Length


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.with_overrides(data_dir=tmp_path, source_max_bytes=4096)


def path_of(url: str) -> str:
    assert url.startswith("http://127.0.0.1:5000/source-blobs/"), url
    return url.removeprefix("http://127.0.0.1:5000")


def new_source(api: Api, user: User, path: str = "/sources") -> dict[str, str]:
    created = api.post(path, user)
    assert created.status_code == 201, created.json
    assert set(created.json) == {"source_blob"}
    return {name: path_of(url) for name, url in created.json["source_blob"].items()}


def source_files(settings: Settings) -> list[str]:
    root = settings.data_dir / "sources"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".collected")


def test_an_upload_as_the_cli_sends_it_is_served_back_without_credentials(api: Api, alice: User,
                                                                           settings: Settings) -> None:
    blob = new_source(api, alice)
    put = api.client.put(blob["put_url"], data=b"\x1f\x8b tarball", headers=CLI_UPLOAD)
    assert put.status_code == 200, put.json
    got = api.client.get(blob["get_url"])
    assert got.status_code == 200 and got.data == b"\x1f\x8b tarball"
    assert got.headers["Content-Type"] == "application/octet-stream"
    source_id = _token(blob["put_url"]).split(".")[0]
    assert source_files(settings) == [f"{source_id}/blob", f"{source_id}/record.json"]
    again = api.client.put(blob["put_url"], data=b"second", headers=CLI_UPLOAD)  # S3 lets a PUT replace
    assert again.status_code == 200 and api.client.get(blob["get_url"]).data == b"second"


def test_the_older_app_path_needs_access_to_the_app(api: Api, alice: User, bob: User) -> None:
    assert api.post("/apps", alice, json={"name": "alices-app"}).status_code == 201
    new_source(api, alice, "/apps/alices-app/sources")
    refused = api.post("/apps/alices-app/sources", bob)
    assert refused.status_code == 404 and refused.json["id"] == "not_found"


def test_creating_a_source_needs_a_key_and_takes_no_parameters(api: Api, alice: User) -> None:
    assert api.post("/sources").status_code == 401
    refused = api.post("/sources", alice, json={"url": "http://169.254.169.254/"})
    assert refused.status_code == 422 and refused.json["id"] == "invalid_params"


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_forged_expired_and_swapped_tokens_are_refused(api: Api, alice: User, settings: Settings) -> None:
    blob = new_source(api, alice)
    source_id = _token(blob["put_url"]).split(".")[0]
    put, get = _token(blob["put_url"]), _token(blob["get_url"])
    expired = signed_urls.sign(PUT, source_id, ttl_seconds=3600, now=time.time() - 3601)
    forged = put[:-1] + ("A" if put[-1] != "A" else "B")
    for token in (forged, expired, get, "x", put.split(".")[0]):  # a get token cannot upload
        refused = api.client.put(f"/source-blobs/{token}", data=b"evil", headers=CLI_UPLOAD)
        assert refused.status_code == 404 and "POST /sources" in refused.json["message"], token
    for token in (put, signed_urls.sign(GET, source_id, ttl_seconds=-1)):
        assert api.client.get(f"/source-blobs/{token}").status_code == 404
    assert source_files(settings) == [f"{source_id}/record.json"]  # nothing was stored


def test_a_source_not_uploaded_yet_or_collected_is_a_clear_404(api: Api, alice: User, settings: Settings) -> None:
    blob = new_source(api, alice)
    missing = api.client.get(blob["get_url"])
    assert missing.status_code == 404 and "PUT the tarball" in missing.json["message"]
    for directory in (settings.data_dir / "sources").glob("*-*"):
        for file in directory.iterdir():
            file.unlink()
    gone = api.client.put(blob["put_url"], data=b"late", headers=CLI_UPLOAD)
    assert gone.status_code == 404 and "no longer exists" in gone.json["message"]


def test_an_oversize_upload_is_refused_and_the_previous_one_kept(api: Api, alice: User, settings: Settings) -> None:
    blob = new_source(api, alice)
    assert api.client.put(blob["put_url"], data=b"small", headers=CLI_UPLOAD).status_code == 200
    refused = api.client.put(blob["put_url"], data=b"x" * 4097, headers=CLI_UPLOAD)
    assert refused.status_code == 413 and "4096 bytes" in refused.json["message"]
    assert api.client.get(blob["get_url"]).data == b"small"
    assert len(source_files(settings)) == 2  # record and blob: no partial upload left


def test_an_upload_without_content_length_is_refused(api: Api, alice: User) -> None:
    blob = new_source(api, alice)
    refused = api.client.put(blob["put_url"], data=b"chunked", headers={**CLI_UPLOAD, "Transfer-Encoding": "chunked"})
    assert refused.status_code == 411 and "Content-Length" in refused.json["message"]


def test_an_uploaded_tarball_is_fetched_and_unpacked_for_its_owner(api: Api, alice: User, bob: User,
                                                                   settings: Settings, tmp_path: Path) -> None:
    """What a build will do with a get_url: the source half of `heroku builds:create`, end to end."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("repo-main/Procfile", b"web: python app.py\n"), ("repo-main/app.py", b"print(1)\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = new_source(api, alice)
    assert api.client.put(blob["put_url"], data=archive.getvalue(), headers=CLI_UPLOAD).status_code == 200
    get_url = "http://127.0.0.1:5000" + blob["get_url"]
    checksum = "SHA256:" + hashlib.sha256(archive.getvalue()).hexdigest()
    fetcher = SourceFetcher.from_settings(settings.with_overrides(source_max_bytes=1 << 20))
    fetcher.check(get_url, checksum, account_id=alice.id)
    tarball = fetcher.fetch(get_url, checksum, account_id=alice.id, dest=tmp_path / "source.tgz")
    app = extract(tarball, tmp_path / "app", limits_from(settings))
    assert (app / "Procfile").read_text() == "web: python app.py\n" and (app / "app.py").exists()
    with pytest.raises(SourceError, match="another account"):
        fetcher.check(get_url, checksum, account_id=bob.id)
