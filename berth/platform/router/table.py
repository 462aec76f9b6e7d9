"""The routing table: which host names reach which web dynos. The runner builds it from the
formation and the dynos' states; the router renders it. Plain values, no I/O."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\Z")
ADDRESS_RE = re.compile(r"^[0-9a-zA-Z.\-]+:[0-9]{1,5}\Z|^\[[0-9a-fA-F:]+\]:[0-9]{1,5}\Z")
APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,29}\Z")


@dataclass(frozen=True)
class Dyno:
    """One web dyno the router may send requests to: its name (`web.1`) and address host:port."""
    name: str
    address: str

    def __post_init__(self) -> None:
        if not ADDRESS_RE.match(self.address):
            raise ValueError(f"dyno {self.name}: {self.address!r} is not host:port")
        if not re.match(r"^[a-z0-9_-]+\.[0-9]+$", self.name):
            raise ValueError(f"{self.name!r} is not a dyno name like web.1")


@dataclass(frozen=True)
class AppRoute:
    """An app as the router sees it. `dynos` are the web dynos that are `up`; `crashed` says
    whether web dynos exist but none is up (H10 rather than H14)."""
    app: str
    hosts: tuple[str, ...]
    dynos: tuple[Dyno, ...] = ()
    crashed: bool = False
    maintenance: bool = False
    app_id: str | None = None   # whose log stream gets the router lines; None: not logged

    def __post_init__(self) -> None:
        if not APP_NAME_RE.match(self.app):
            raise ValueError(f"{self.app!r} is not an app name")
        for host in self.hosts:
            if not HOSTNAME_RE.match(host):
                raise ValueError(f"app {self.app}: {host!r} is not a host name")


@dataclass(frozen=True)
class RoutingTable:
    apps: tuple[AppRoute, ...] = field(default=())

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for route in self.apps:
            for host in route.hosts:
                if host in seen and seen[host] != route.app:
                    raise ValueError(f"host {host} belongs to both {seen[host]} and {route.app}")
                seen[host] = route.app

    @property
    def hosts(self) -> list[str]:
        return sorted({host for route in self.apps for host in route.hosts})

    def route(self, app: str) -> AppRoute | None:
        return next((route for route in self.apps if route.app == app), None)

    def dyno_name(self, app: str, address: str) -> str | None:
        """The dyno of `app` at `address` (for router log lines), if the table knows it."""
        route = self.route(app)
        if route is None:
            return None
        return next((dyno.name for dyno in route.dynos if dyno.address == address), None)



def only_adds_dynos(old: RoutingTable, new: RoutingTable) -> bool:
    """Whether `new` differs from `old` only by more web dynos for apps it already routed (a
    scale-up, a rolling deploy's new dynos): nothing is taken away, no page or host changes."""
    if [(r.app, r.hosts, r.maintenance, r.app_id) for r in old.apps] != \
            [(r.app, r.hosts, r.maintenance, r.app_id) for r in new.apps]:
        return False
    for before, after in zip(old.apps, new.apps):
        if not set(before.dynos) <= set(after.dynos) or (before.crashed != after.crashed and not after.dynos):
            return False
    return True
