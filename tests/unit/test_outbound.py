"""The address policy of Berth's outbound calls (berth.outbound), against real sockets: a
loopback HTTP server that counts what reaches it, and a syslog listener."""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
import requests

from berth.config import Settings, load_settings
from berth.outbound import TargetPolicy, TargetRefused

STRICT = TargetPolicy()


class _Counting(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.hits += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("host", [
    "localhost", "127.0.0.1", "127.1", "2130706433", "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]",
    "0.0.0.0", "169.254.169.254", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1",
    "[fe80::1]", "[fc00::1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]"])
def test_private_targets_are_refused_by_default(host: str) -> None:
    with pytest.raises(TargetRefused, match="BERTH_ALLOW_PRIVATE_TARGETS"):
        STRICT.check_url(f"http://{host}:6379/heroku/resources")


def test_public_and_unresolvable_targets_pass_the_early_check() -> None:
    STRICT.check_url("https://8.8.8.8/heroku/resources")
    STRICT.check_url("https://partner.invalid/heroku/resources")  # checked again when connecting


def test_the_operator_may_allow_private_targets() -> None:
    TargetPolicy(allow_private=True).check_url("http://127.0.0.1:6379/")


def test_only_berths_own_provider_routes_are_exempt(tmp_path: Any) -> None:
    own = TargetPolicy.from_settings(Settings(data_dir=tmp_path, database_url="sqlite://", port=5000))
    own.check_url("http://127.0.0.1:5000/providers/logs/drains/x")
    own.check_url("http://drain:secret@127.0.0.1:5000/providers/logs/drains/x")
    for other in ("http://127.0.0.1:5000/apps", "http://127.0.0.1:5000/providers/../apps",
                  "http://127.0.0.1:5000/providers/%2e%2e/apps", "http://127.0.0.1:5001/providers/logs",
                  "http://localhost:5000/providers/logs"):
        with pytest.raises(TargetRefused):
            own.check_url(other)


def test_a_guarded_session_never_reaches_a_loopback_server(loopback_server: ThreadingHTTPServer) -> None:
    port = loopback_server.server_address[1]
    before = loopback_server.hits  # type: ignore[attr-defined]
    with STRICT.session() as session:
        for url in (f"http://localhost:{port}/", f"http://127.0.0.1:{port}/", f"http://[::ffff:127.0.0.1]:{port}/"):
            with pytest.raises(TargetRefused):
                session.get(url, timeout=5)
    assert loopback_server.hits == before  # type: ignore[attr-defined]
    with TargetPolicy(allow_private=True).session() as allowed:
        assert allowed.get(f"http://localhost:{port}/", timeout=5).text == "ok"


def test_dns_rebinding_is_refused_at_connection_time(loopback_server: ThreadingHTTPServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that resolves to a public address when the URL is checked and to 127.0.0.1 when
    the connection is made (a rebinding DNS server, played by the resolver here)."""
    port = loopback_server.server_address[1]
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1"])

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        return real(next(answers), *args, **kwargs) if host == "rebind.example" else real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    before = loopback_server.hits  # type: ignore[attr-defined]
    with STRICT.session() as session, pytest.raises(TargetRefused, match=r"rebind\.example \(127\.0\.0\.1\)"):
        session.get(f"http://rebind.example:{port}/", timeout=5)
    assert loopback_server.hits == before  # type: ignore[attr-defined]


def test_syslog_connections_are_checked_too() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(TargetRefused):
            STRICT.connect("localhost", port, 2)
        with TargetPolicy(allow_private=True).connect("localhost", port, 2):
            pass


def test_environment_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy would make the check see the proxy's address, not the target's."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert STRICT.session().trust_env is False
    assert isinstance(STRICT.session(), requests.Session)


def test_the_setting_is_off_unless_the_operator_says_so(tmp_path: Any) -> None:
    base = {"BERTH_DATA_DIR": str(tmp_path)}
    assert load_settings(base).allow_private_targets is False
    assert load_settings({**base, "BERTH_ALLOW_PRIVATE_TARGETS": "1"}).allow_private_targets is True
    with pytest.raises(ValueError, match="BERTH_ALLOW_PRIVATE_TARGETS"):
        load_settings({**base, "BERTH_ALLOW_PRIVATE_TARGETS": "sometimes"})
