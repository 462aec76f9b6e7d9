"""Which routing changes may be applied without waiting for nginx (router/table.only_adds_dynos)."""
from __future__ import annotations

from berth.platform.router.table import AppRoute, Dyno, RoutingTable, only_adds_dynos

ONE, TWO = Dyno("web.1", "127.0.0.1:5001"), Dyno("web.2", "127.0.0.1:5002")


def table(*dynos: Dyno, crashed: bool = False, maintenance: bool = False, hosts=("a.localhost",)) -> RoutingTable:
    return RoutingTable((AppRoute("ab", tuple(hosts), tuple(dynos), crashed=crashed, maintenance=maintenance),))


def test_more_dynos_for_the_same_app_only_add() -> None:
    assert only_adds_dynos(table(), table(ONE))
    assert only_adds_dynos(table(ONE), table(ONE, TWO))
    assert only_adds_dynos(table(crashed=True), table(ONE))  # the first dyno up after a crash


def test_taking_a_dyno_out_or_changing_pages_and_hosts_waits() -> None:
    assert not only_adds_dynos(table(ONE, TWO), table(TWO))
    assert not only_adds_dynos(table(ONE), table(TWO))  # a rolling replace's old dyno goes
    assert not only_adds_dynos(table(ONE), table(ONE, maintenance=True))
    assert not only_adds_dynos(table(), table(crashed=True))  # H14 page becomes H10
    assert not only_adds_dynos(table(ONE), table(ONE, TWO, hosts=("a.localhost", "www.example.org")))
    assert not only_adds_dynos(table(ONE), RoutingTable())
    assert not only_adds_dynos(RoutingTable(), table(ONE))  # a new app (and its certificate)
