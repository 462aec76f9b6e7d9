"""The router on a real nginx with real upstream dynos: spreading requests, Heroku's headers and
H-code pages, TLS from the installation CA, WebSockets, and reloads that drop no request."""
from __future__ import annotations

import http.client
import json
import os
import pwd
import socket
import ssl
import threading
import time
import uuid

import pytest

from berth.platform.router import AppRoute, Dyno, RoutingTable
from berth.platform.router.nginx import NginxRouter, RouterError

pytestmark = pytest.mark.slow


def get(router: NginxRouter, host: str, path: str = "/", headers: dict[str, str] | None = None,
        timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One request over a new connection, as a client of `host` would send it."""
    connection = http.client.HTTPConnection("127.0.0.1", router.layout.port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def route(app: str, *dynos: Dyno, **flags: bool) -> AppRoute:
    return AppRoute(app=app, hosts=(f"{app}.apps.test",), dynos=dynos, **flags)


def test_nginx_runs_as_the_unprivileged_router_account(router: NginxRouter) -> None:
    pid = router.pid()
    assert pid is not None
    owner = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        assert pwd.getpwuid(owner).pw_name == "berth-router"
    else:
        assert owner == os.geteuid()


def test_requests_spread_over_all_up_web_dynos(router: NginxRouter, upstreams) -> None:
    dynos = tuple(Dyno(f"web.{n}", upstreams.start(f"spread-web.{n}")) for n in (1, 2, 3))
    router.apply(RoutingTable((route("spread", *dynos),)))
    seen = {json.loads(get(router, "spread.apps.test")[2])["dyno"] for _ in range(60)}
    assert seen == {"spread-web.1", "spread-web.2", "spread-web.3"}


def test_heroku_headers_are_added(router: NginxRouter, upstreams) -> None:
    router.apply(RoutingTable((route("headers", Dyno("web.1", upstreams.start("headers-web.1"))),)))
    before = int(time.time() * 1000)
    status, _, body = get(router, "headers.apps.test", headers={"X-Forwarded-For": "203.0.113.9"})
    sent = json.loads(body)["headers"]
    assert status == 200
    assert sent["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["x-forwarded-port"] == str(router.layout.port)
    assert sent["via"] == "1.1 vegur"
    assert sent["host"] == "headers.apps.test"
    assert before - 1000 <= int(sent["x-request-start"]) <= int(time.time() * 1000)
    uuid.UUID(sent["x-request-id"])  # a fresh UUID when the client sent none

    kept = "abcdefghij0123456789+/=-"
    assert json.loads(get(router, "headers.apps.test", headers={"X-Request-Id": kept})[2])["headers"][
        "x-request-id"] == kept
    replaced = json.loads(get(router, "headers.apps.test", headers={"X-Request-Id": "short"})[2])["headers"]
    uuid.UUID(replaced["x-request-id"])


def test_unknown_host_gets_the_no_such_app_page(router: NginxRouter) -> None:
    status, _, body = get(router, "nobody.apps.test")
    assert status == 404 and b"nothing here" in body


@pytest.mark.parametrize("flags, status, text", [
    ({}, 503, b"Application error"),                       # H14: no web dynos
    ({"crashed": True}, 503, b"Application error"),        # H10
    ({"maintenance": True}, 503, b"Offline for Maintenance"),  # H80
])
def test_apps_without_a_dyno_to_serve_get_herokus_pages(router: NginxRouter, flags, status, text) -> None:
    router.apply(RoutingTable((route("pages", **flags),)))
    answer = get(router, "pages.apps.test")
    assert (answer[0], text in answer[2]) == (status, True)


def test_refused_connection_retries_another_dyno(router: NginxRouter, upstreams) -> None:
    live = Dyno("web.1", upstreams.start("retry-web.1"))
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        dead = Dyno("web.2", f"127.0.0.1:{closed.getsockname()[1]}")
    router.apply(RoutingTable((route("retry", dead, live),)))
    assert all(get(router, "retry.apps.test")[0] == 200 for _ in range(20))

    router.apply(RoutingTable((route("retry", dead),)))
    status, _, body = get(router, "retry.apps.test")
    assert status == 503 and b"Application error" in body


def test_no_first_byte_in_time_is_h12(router: NginxRouter, upstreams) -> None:
    router.apply(RoutingTable((route("slow", Dyno("web.1", upstreams.start("slow-web.1"))),)))
    status, _, body = get(router, "slow.apps.test", "/sleep?s=4")  # the test router waits 2 s
    assert status == 503 and b"Application error" in body


def test_websockets_pass_through(router: NginxRouter, upstreams) -> None:
    router.apply(RoutingTable((route("ws", Dyno("web.1", upstreams.start("ws-web.1"))),)))
    with socket.create_connection(("127.0.0.1", router.layout.port), timeout=5) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: ws.apps.test\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1024)
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(b"ping through the router")
        echoed = b""
        while len(echoed) < len(b"ping through the router"):
            echoed += sock.recv(1024)
        assert echoed == b"ping through the router"


def test_tls_port_serves_app_hosts_with_a_certificate_from_the_installation_ca(router, upstreams, ca) -> None:
    router.apply(RoutingTable((AppRoute("tls", ("tls.apps.test", "www.example.org"),
                                        (Dyno("web.1", upstreams.start("tls-web.1")),)),)))
    context = ssl.create_default_context(cadata=ca.cert_pem)
    for host in ("tls.apps.test", "www.example.org"):
        with socket.create_connection(("127.0.0.1", router.layout.tls_port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:  # verifies the name
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                answer = b""
                while chunk := tls.recv(65536):
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        assert b'"x-forwarded-proto": "https"' in answer


def test_a_table_nginx_refuses_leaves_the_running_one(router: NginxRouter, upstreams) -> None:
    good = RoutingTable((route("kept", Dyno("web.1", upstreams.start("kept-web.1"))),))
    router.apply(good)
    bad = RoutingTable((route("kept", Dyno("web.1", "127.0.0.1:99999")),))  # port out of range
    with pytest.raises(RouterError, match="refused"):
        router.apply(bad)
    assert router.table == good
    assert get(router, "kept.apps.test")[0] == 200


def test_reloads_drop_no_request(router: NginxRouter, upstreams) -> None:
    dynos = [Dyno(f"web.{n}", upstreams.start(f"reload-web.{n}")) for n in (1, 2)]
    tables = [RoutingTable((route("reload", dynos[0]),)), RoutingTable((route("reload", *dynos),))]
    router.apply(tables[0])
    failures: list[str] = []
    done = 0
    stop = threading.Event()

    def steady_load() -> None:
        nonlocal done
        while not stop.is_set():
            try:
                status = get(router, "reload.apps.test")[0]
                if status != 200:
                    failures.append(str(status))
            except OSError as error:
                failures.append(repr(error))
            done += 1

    loaders = [threading.Thread(target=steady_load) for _ in range(4)]
    for loader in loaders:
        loader.start()
    for n in range(20):
        router.apply(tables[n % 2])
        time.sleep(0.15)
    stop.set()
    for loader in loaders:
        loader.join()
    assert done > 100 and failures == []


def test_each_request_becomes_one_heroku_router_line_in_the_apps_log(router: NginxRouter, upstreams, app,
                                                                      api, alice) -> None:
    from sqlalchemy import select

    from berth.platform.logs.models import LogLine
    from berth.platform.router.router_log import RouterLogShipper

    shop = api.post("/apps", alice, json={"name": "logged"}).get_json()
    database = app.extensions["berth.database"]
    dyno = Dyno("web.1", upstreams.start(f"logged-web.1-{shop['id'][:8]}"))
    shipper = RouterLogShipper(router.layout.access_log, database, lambda: router.table, router.reopen_logs)
    shipper.ship_once()  # earlier tests' requests are not this app's
    router.apply(RoutingTable((AppRoute("logged", ("logged.apps.test",), (dyno,), app_id=shop["id"]),)))
    get(router, "logged.apps.test", "/?q=1", headers={"X-Request-Id": "r" * 24})
    router.apply(RoutingTable((AppRoute("logged", ("logged.apps.test",), (), app_id=shop["id"]),)))
    get(router, "logged.apps.test", "/gone")
    get(router, "nobody.apps.test")  # no app: in nobody's log
    assert shipper.ship_once() == 2
    with database.session(write=False) as session:
        lines = list(session.execute(select(LogLine.source, LogLine.process, LogLine.message)
                                     .where(LogLine.app_id == shop["id"]).order_by(LogLine.id)))
    assert [(source, process) for source, process, _ in lines] == [("heroku", "router")] * 2
    served, refused = (message for _, _, message in lines)
    assert served.startswith('at=info method=GET path="/?q=1" host=logged.apps.test request_id=' + "r" * 24)
    assert ' fwd="127.0.0.1" dyno=web.1 connect=' in served and " status=200 " in served
    assert refused.startswith('at=error code=H14 desc="No web processes running" method=GET path="/gone"')
    assert " dyno= connect= service= status=503 " in refused


def test_the_access_log_rotates_without_losing_or_doubling_a_line(router: NginxRouter, upstreams, app,
                                                                   api, alice) -> None:
    from sqlalchemy import func, select

    from berth.platform.logs.models import LogLine
    from berth.platform.router.router_log import RouterLogShipper

    shop = api.post("/apps", alice, json={"name": "rotated"}).get_json()
    database = app.extensions["berth.database"]
    shipper = RouterLogShipper(router.layout.access_log, database, lambda: router.table, router.reopen_logs,
                               rotate_bytes=2000)
    shipper.ship_once()
    router.apply(RoutingTable((AppRoute("rotated", ("rotated.apps.test",), (), app_id=shop["id"]),)))
    shipped = 0
    for _ in range(6):
        for _ in range(5):
            get(router, "rotated.apps.test")
        shipped += shipper.ship_once()
        time.sleep(0.1)  # nginx reopens its log
    shipped += shipper.ship_once()
    with database.session(write=False) as session:
        count = session.scalar(select(func.count()).select_from(LogLine).where(LogLine.app_id == shop["id"]))
    assert shipped == count == 30
    assert router.layout.access_log.stat().st_size < 2000 * 2
