"""The router as a supervised service: the routing table built from the control plane (apps,
their custom domains, maintenance; web dynos from whoever runs them), nginx kept running and
reconfigured when the table changes, and router lines shipped to the apps' log streams.

`python -m berth.platform.router.service` runs it until SIGTERM. The runner passes `dynos_of`
(app id → its up web dynos, and whether web dynos exist but crashed); until it does, every app
has none and answers H14."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from berth import certificates
from berth.config import Settings
from berth.db import Database
from berth.platform.models import App, Domain
from berth.platform.router.nginx import NginxRouter
from berth.platform.router.nginx_config import RouterLayout
from berth.platform.router.router_log import RouterLogShipper
from berth.platform.router.table import AppRoute, Dyno, RoutingTable, only_adds_dynos

log = logging.getLogger(__name__)
DynosOf = Callable[[str], tuple[tuple[Dyno, ...], bool]]


def no_dynos(_app_id: str) -> tuple[tuple[Dyno, ...], bool]:
    return (), False


def table_from_database(database: Database, apps_domain: str, dynos_of: DynosOf = no_dynos) -> RoutingTable:
    with database.session(write=False) as session:
        apps = list(session.execute(select(App.id, App.name, App.maintenance).order_by(App.name)))
        custom: dict[str, list[str]] = {}
        for app_id, hostname in session.execute(select(Domain.app_id, Domain.hostname).order_by(Domain.hostname)):
            custom.setdefault(app_id, []).append(hostname)
    routes = []
    for app_id, name, maintenance in apps:
        dynos, crashed = dynos_of(app_id)
        routes.append(AppRoute(name, (f"{name}.{apps_domain}", *custom.get(app_id, ())), dynos, crashed=crashed,
                               maintenance=bool(maintenance), app_id=app_id))
    return RoutingTable(tuple(routes))


def router_layout(settings: Settings, host: str = "0.0.0.0") -> RouterLayout:
    return RouterLayout(prefix=Path(settings.data_dir) / "router", listen_host=host, port=settings.router_port,
                        tls_port=settings.router_tls_port)


class RouterService:
    def __init__(self, settings: Settings, database: Database, layout: RouterLayout,
                 dynos_of: DynosOf = no_dynos) -> None:
        self.settings, self.database, self.dynos_of = settings, database, dynos_of
        self.router = NginxRouter(layout, certificates.installation_ca(Path(settings.data_dir)),
                                  settings.apps_domain)
        self.shipper = RouterLogShipper(layout.access_log, database, lambda: self.router.table,
                                        self.router.reopen_logs)

    def round(self) -> None:
        """One supervision round: nginx up, the table current, router lines shipped."""
        self.route()
        self.shipper.ship_once()

    def route(self) -> None:
        """nginx up and routing by the current table."""
        table = table_from_database(self.database, self.settings.apps_domain, self.dynos_of)
        if not self.router.running():
            self.router.table = table
            self.router.ensure_running()
        elif table != self.router.table:
            # A table that only adds dynos (a scale-up) is applied quickly (see NginxRouter.apply):
            # the next round routes the next dynos up. Anything else is checked and waited for.
            self.router.apply(table, quick=only_adds_dynos(self.router.table, table))

    def ship_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Router lines into the apps' log streams, beside the routing rounds (the runner's), so that
        a burst of requests to log never delays routing a dyno that came up."""
        while not stop.wait(interval):
            try:
                self.shipper.ship_once()
            except Exception:  # the database away: the lines wait in the access log for the next try
                log.exception("shipping router lines failed; retrying")

    def drain(self, timeout: float) -> bool:
        """Until no nginx worker routes by an earlier table (see NginxRouter.drain)."""
        return self.router.drain(timeout)

    def serve(self, stop: threading.Event, interval: float = 1.0) -> None:
        try:
            while not stop.is_set():
                try:
                    self.round()
                except Exception:  # one bad round (database away, nginx refusing) must not end routing
                    log.exception("router round failed; retrying")
                stop.wait(interval)
        finally:
            self.router.stop()


def main() -> None:
    from berth.process import start_process

    settings, database, stop = start_process()
    RouterService(settings, database, router_layout(settings)).serve(stop)


if __name__ == "__main__":
    main()
