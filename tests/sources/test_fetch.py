"""Fetching a source_blob.url (berth.platform.sources.fetch): Berth's own source URLs read from the
store for their owner only, other hosts only when the operator allows them and never at a private
address, within the size and time limits, checksums verified. A loopback HTTP server stands in
for a remote host and counts what reaches it."""
from __future__ import annotations

import hashlib
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.fernet import Fernet

from berth import crypto, signed_urls
from berth.config import Settings, load_settings
from berth.platform.sources import SourceError, SourceFetcher
from berth.platform.sources.store import SourceStore
from berth.platform.sources.urls import GET, source_urls

TARBALL = b"\x1f\x8b pretend tarball " * 100
SHA = hashlib.sha256(TARBALL).hexdigest()


class _Remote(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        if self.path == "/slow":
            time.sleep(3)
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            if value:  # an empty value leaves the header out: the body ends when the connection does
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def remote() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Remote)
    server.hits = []  # type: ignore[attr-defined]
    port = server.server_address[1]
    _Remote.routes = {
        "/source.tgz": (200, {}, TARBALL),
        "/moved": (302, {"Location": "/source.tgz"}, b""),
        "/to-localhost": (302, {"Location": f"http://localhost:{port}/source.tgz"}, b""),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/big": (200, {}, b"x" * 5000),
        "/unannounced": (200, {"Content-Length": ""}, b"x" * 5000),
        "/slow": (200, {}, TARBALL),
        "/missing": (404, {}, b""),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    crypto.configure([Fernet.generate_key().decode()])
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://", port=5000)


def fetcher(settings: Settings, **changes: Any) -> SourceFetcher:
    return SourceFetcher.from_settings(settings.with_overrides(**changes))


def uploaded(settings: Settings, owner: str = "alice") -> str:
    """An uploaded source's get_url, as POST /sources made it."""
    store = SourceStore.of(settings)
    record = store.create(owner)
    store.receive(record, io.BytesIO(TARBALL), len(TARBALL), len(TARBALL))
    return source_urls(settings.api_url, record.id)["get_url"]


def hits_after(remote: ThreadingHTTPServer, action: Any) -> list[str]:
    before = len(remote.hits)  # type: ignore[attr-defined]
    action()
    return remote.hits[before:]  # type: ignore[attr-defined]


def test_an_own_source_is_read_locally_by_its_owner_with_its_checksum(settings: Settings, tmp_path: Path) -> None:
    url = uploaded(settings)
    got = fetcher(settings).fetch(url, f"SHA256:{SHA.upper()}", account_id="alice", dest=tmp_path / "a.tgz")
    assert got.read_bytes() == TARBALL
    fetcher(settings).check(url, f"SHA256:{SHA}", account_id="alice")


@pytest.mark.parametrize("checksum,message", [
    ("SHA256:" + "0" * 64, "checksum does not match"), ("MD5:abc", "must be SHA256:"), ("SHA256:xyz", "must be SHA256:")])
def test_a_wrong_or_malformed_checksum_is_refused_and_leaves_no_file(settings: Settings, tmp_path: Path,
                                                                     checksum: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        fetcher(settings).fetch(uploaded(settings), checksum, account_id="alice", dest=tmp_path / "a.tgz")
    assert not (tmp_path / "a.tgz").exists()


def test_another_accounts_source_is_refused(settings: Settings, tmp_path: Path) -> None:
    url = uploaded(settings, owner="alice")
    for attempt in (lambda: fetcher(settings).check(url, account_id="mallory"),
                    lambda: fetcher(settings).fetch(url, account_id="mallory", dest=tmp_path / "a.tgz")):
        with pytest.raises(SourceError, match="belongs to another account"):
            attempt()


def test_forged_and_long_expired_urls_are_refused_and_a_queued_build_may_read_its_own(settings: Settings,
                                                                                      tmp_path: Path) -> None:
    url = uploaded(settings)
    base, token = url.rsplit("/", 1)
    source_id = token.split(".")[0]
    forged = f"{base}/{token[:-2]}AA"
    long_ago = f"{base}/{signed_urls.sign(GET, source_id, ttl_seconds=3600, now=time.time() - 3 * 24 * 3600)}"
    for bad in (forged, long_ago):
        with pytest.raises(SourceError, match="invalid or has expired"):
            fetcher(settings).fetch(bad, account_id="alice", dest=tmp_path / "a.tgz")
    an_hour_ago = f"{base}/{signed_urls.sign(GET, source_id, ttl_seconds=3600, now=time.time() - 7200)}"
    with pytest.raises(SourceError, match="invalid or has expired"):
        fetcher(settings).check(an_hour_ago, account_id="alice")  # a new build: expired
    fetcher(settings).fetch(an_hour_ago, account_id="alice", dest=tmp_path / "a.tgz")  # a queued one reads it


def test_a_source_not_uploaded_is_refused(settings: Settings, tmp_path: Path) -> None:
    record = SourceStore.of(settings).create("alice")
    with pytest.raises(SourceError, match="Nothing was uploaded"):
        fetcher(settings).fetch(source_urls(settings.api_url, record.id)["get_url"], account_id="alice",
                                dest=tmp_path / "a.tgz")


def test_other_hosts_are_refused_by_default_without_a_connection(settings: Settings, tmp_path: Path,
                                                                 remote: ThreadingHTTPServer) -> None:
    port = remote.server_address[1]
    for url in (f"http://127.0.0.1:{port}/source.tgz", "https://github.com/o/r/archive/main.tar.gz",
                f"http://127.0.0.1:5000/apps", "file:///etc/passwd", "ftp://example.com/x.tgz"):
        attempt = lambda: fetcher(settings, allow_private_targets=True).fetch(  # noqa: E731
            url, account_id="alice", dest=tmp_path / "a.tgz")
        with pytest.raises(SourceError, match="BERTH_SOURCE_HOSTS|http or https"):
            assert hits_after(remote, attempt) == []
    assert remote.hits == []  # type: ignore[attr-defined]


def test_an_allowed_host_at_a_private_address_is_refused_after_dns(settings: Settings, tmp_path: Path,
                                                                    remote: ThreadingHTTPServer) -> None:
    port = remote.server_address[1]
    strict = fetcher(settings, source_hosts=("localhost", "127.0.0.1"))  # private targets not allowed
    for url in (f"http://localhost:{port}/source.tgz", f"http://127.0.0.1:{port}/source.tgz"):
        with pytest.raises(SourceError, match="loopback, private or link-local"):
            assert hits_after(remote, lambda: strict.fetch(url, account_id="a", dest=tmp_path / "a.tgz")) == []
    assert not (tmp_path / "a.tgz").exists()


def test_an_allowed_host_is_fetched_following_redirects_only_to_allowed_hosts(settings: Settings, tmp_path: Path,
                                                                              remote: ThreadingHTTPServer) -> None:
    port = remote.server_address[1]
    # Tests reach the loopback "remote" only because private targets are allowed here (as in development).
    allowed = fetcher(settings, source_hosts=("127.0.0.1",), allow_private_targets=True)
    got = allowed.fetch(f"http://127.0.0.1:{port}/moved", f"SHA256:{SHA}", account_id="a", dest=tmp_path / "a.tgz")
    assert got.read_bytes() == TARBALL
    for path, message in (("/to-localhost", "from localhost"), ("/to-metadata", "from 169.254.169.254"),
                          ("/loop", "redirected more than 5 times"), ("/missing", "answered HTTP 404")):
        hits = []
        with pytest.raises(SourceError, match=message):
            hits = hits_after(remote, lambda: allowed.fetch(f"http://127.0.0.1:{port}{path}", account_id="a",
                                                            dest=tmp_path / "b.tgz"))
        assert "/source.tgz" not in hits
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tgz"]  # no partial download left


def test_oversize_and_slow_sources_stop_with_a_message(settings: Settings, tmp_path: Path,
                                                       remote: ThreadingHTTPServer) -> None:
    port = remote.server_address[1]
    limited = fetcher(settings, source_hosts=("127.0.0.1",), allow_private_targets=True, source_max_bytes=1000,
                      source_fetch_timeout_seconds=1.0)
    for path, message in (("/big", "larger than the limit of 1000 bytes"),
                          ("/unannounced", "larger than the limit of 1000 bytes"),
                          ("/slow", "did not answer within 1 s")):
        with pytest.raises(SourceError, match=message) as refused:
            limited.fetch(f"http://127.0.0.1:{port}{path}", account_id="a", dest=tmp_path / "a.tgz")
        assert "?" not in refused.value.message
    assert list(tmp_path.iterdir()) == []


def test_the_operator_lists_hosts_and_subdomain_wildcards_in_berth_source_hosts(tmp_path: Path) -> None:
    crypto.configure([Fernet.generate_key().decode()])
    settings = load_settings({"BERTH_DATA_DIR": str(tmp_path), "BERTH_SOURCE_HOSTS": " *.Example.invalid, other.invalid ",
                              "BERTH_SOURCE_MAX_BYTES": "1234", "BERTH_SOURCE_FETCH_TIMEOUT_SECONDS": "2.5"})
    assert settings.source_hosts == ("*.example.invalid", "other.invalid")
    allowed = SourceFetcher.from_settings(settings)
    assert (allowed.max_bytes, allowed.timeout_seconds) == (1234, 2.5)
    for url in ("https://codeload.example.invalid/o/r/tar.gz/main", "http://other.invalid/x.tgz"):
        allowed.check(url, account_id="a")  # names that do not resolve pass here; the connection checks again
    for url in ("https://example.invalid.evil.test/x.tgz", "https://evilexample.invalid/x.tgz",
                "https://sub.other.invalid/x.tgz"):
        with pytest.raises(SourceError, match="BERTH_SOURCE_HOSTS"):
            allowed.check(url, account_id="a")
    assert load_settings({"BERTH_DATA_DIR": str(tmp_path)}).source_hosts == ()
