"""The router: nginx in front of every app's web dynos, driven from a routing table.

`table` says which host names reach which dynos; `nginx_config` renders it with Heroku's headers,
H codes and pages; `nginx` runs nginx as an unprivileged account and applies a new table with a
graceful reload that drops no request."""
from berth.platform.router.table import AppRoute, Dyno, RoutingTable

__all__ = ["AppRoute", "Dyno", "RoutingTable"]
