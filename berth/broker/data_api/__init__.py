"""The data API the Heroku CLI's `pg:*` and `redis:*` commands call (Heroku's api.data.heroku.com):
`/client/v11/databases/…`, `/postgres/v0/databases/…`, `/redis/v0/databases/…`.

An emulation inside the broker: it finds the add-on as the Platform API does (the caller must see
it), asks the add-on's provider through its `info` action (the same partner-API extension every
provider offers), and reads connection details from the config the provider gave the add-on.
The CLI sends these requests to `HEROKU_DATA_HOST` on the Platform API's own scheme and port,
so setting `HEROKU_DATA_HOST` to the host of `HEROKU_HOST` reaches this blueprint."""
from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("data_api", __name__)

from berth.broker.data_api import postgres, redis  # noqa: E402,F401  (routes register themselves)
