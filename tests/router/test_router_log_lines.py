"""Heroku's router lines from nginx's JSON access log records (runtime.md §7.4)."""
from __future__ import annotations

from berth.platform.router import AppRoute, Dyno, RoutingTable
from berth.platform.router.router_log import format_line

TABLE = RoutingTable((AppRoute("shop", ("shop.apps.test",), (Dyno("web.1", "127.0.0.1:5001"),
                                                              Dyno("web.2", "127.0.0.1:5002"))),))
SERVED = {"app": "shop", "code": "", "method": "GET", "path": "/a?b=\"c\"", "host": "shop.apps.test",
          "request_id": "f00", "fwd": "203.0.113.9", "upstream": "127.0.0.1:5002", "connect": "0.001",
          "service": "0.018", "status": "200", "bytes": "1234", "scheme": "http"}


def test_a_served_request_names_the_dyno_behind_the_upstream_address() -> None:
    assert format_line(SERVED, TABLE) == (
        'at=info method=GET path="/a?b=\\"c\\"" host=shop.apps.test request_id=f00 fwd="203.0.113.9" '
        'dyno=web.2 connect=1ms service=18ms status=200 bytes=1234 protocol=http')


def test_a_retried_request_is_logged_with_the_dyno_that_answered() -> None:
    retried = {**SERVED, "upstream": "127.0.0.1:5001, 127.0.0.1:5002", "connect": "-, 0.002"}
    assert " dyno=web.2 connect=2ms " in format_line(retried, TABLE)


def test_router_answers_carry_the_h_code_and_no_dyno() -> None:
    h14 = {**SERVED, "code": "H14", "upstream": "", "connect": "", "service": "", "status": "503"}
    assert format_line(h14, TABLE).startswith('at=error code=H14 desc="No web processes running" method=GET')
    assert " dyno= connect= service= status=503 " in format_line(h14, TABLE)
    h80 = {**h14, "code": "H80"}
    assert format_line(h80, TABLE).startswith('at=info code=H80 desc="Maintenance mode"')


def test_an_h12_names_the_dyno_that_timed_out() -> None:
    h12 = {**SERVED, "code": "H12", "upstream": "127.0.0.1:5001 : -", "status": "503", "service": "30.001"}
    line = format_line(h12, TABLE)
    assert line.startswith('at=error code=H12 desc="Request timeout"')
    assert " dyno=web.1 " in line and " service=30001ms " in line
