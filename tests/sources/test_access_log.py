"""The web process as `make run` starts it logs every request, but never a source URL's signature:
a put_url or get_url is a credential for an hour."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from berth import crypto, signed_urls
from tests.api.test_serve import served_web  # noqa: F401 (the fixture)
from tests.live_server import LiveServer, clean_env

pytestmark = pytest.mark.slow


def test_access_log_lines_keep_no_source_url_signature(served_web: tuple[int, Path]) -> None:  # noqa: F811
    port, home = served_web
    base = home.parent
    server = LiveServer(f"http://127.0.0.1:{port}", {**clean_env(), "BERTH_DATA_DIR": str(base / "data"),
                                                      "BERTH_BUILTIN_ADDONS": "0"}, base / "web.log")
    blob = server.api("POST", "/sources", server.create_user("logged@example.com")).json()["source_blob"]
    assert requests.put(blob["put_url"], data=b"tgz", headers={"Content-Type": ""}, timeout=10).status_code == 200
    assert requests.get(blob["get_url"], timeout=10).content == b"tgz"
    expected = []
    for method, url in (("PUT", blob["put_url"]), ("GET", blob["get_url"])):
        kept, signature = url.rsplit("/", 1)[1].rsplit(".", 1)
        expected.append((signature, f'"{method} /source-blobs/{kept}.[redacted] HTTP/1.1" 200'))
    # gunicorn writes a request's access line after the client has its answer: wait for both.
    deadline = time.monotonic() + 10
    log = server.log.read_text()
    while not all(line in log for _, line in expected) and time.monotonic() < deadline:
        time.sleep(0.05)
        log = server.log.read_text()
    for signature, line in expected:
        assert signature not in log
        assert line in log, log[-2000:]


def test_redact_cuts_only_signatures() -> None:
    crypto.configure([Fernet.generate_key().decode()])
    token = signed_urls.sign("source:get", "abc-1", ttl_seconds=60)
    line = f'"GET /source-blobs/{token} HTTP/1.1" 200 /apps/my-app.1234.x'
    assert signed_urls.redact(line) == line.replace(token.rsplit(".", 1)[1], "[redacted]")
