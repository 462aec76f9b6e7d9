"""The Redis half of the data API: `redis:info` and `redis:cli` read `/redis/v0/databases/{id or name}`.

`redis:cli` connects to `resource_url` itself, over TLS when `prefer_native_tls` is true (without
checking the certificate, as the CLI does for Heroku's), so the TLS URL (`REDIS_TLS_URL`) is the
one offered whenever the provider gave the add-on one."""
from __future__ import annotations

from typing import Any

from berth.broker.data_api import blueprint
from berth.broker.data_api.lookup import data_addon, row, size
from berth.broker.data_api.schemas import RedisDatabaseSchema
from berth.httpapi.openapi import describe

SERVICE = "redis"   # the first-party Redis provider's manifest id
KIND = "Redis database"
URL_VAR, TLS_URL_VAR = "REDIS_URL", "REDIS_TLS_URL"


@blueprint.get("/redis/v0/databases/<ref>")
@describe(summary="A Redis add-on's details: `heroku redis:info`, and where `redis:cli` connects",
          response=RedisDatabaseSchema)
def redis_database(ref: str) -> Any:
    addon = data_addon(ref, SERVICE, KIND)
    info, tls_url = addon.info, addon.config.get(TLS_URL_VAR)
    return RedisDatabaseSchema().dump({
        "addon_id": addon.id, "name": addon.name, "plan": addon.plan,
        "prefer_native_tls": tls_url is not None,
        "resource_url": tls_url or addon.config.get(URL_VAR),
        "info": [
            row("Plan", addon.plan),
            row("Status", "available"),
            row("Created", addon.created_at.strftime("%Y-%m-%d %H:%M UTC")),
            row("Maxmemory", size(info.get("maxmemory_bytes"))),
            row("Maxmemory Policy", info.get("maxmemory_policy")),
            row("Max Clients", info.get("maxclients")),
            row("Persistence", "AOF" if info.get("persistent") else "none"),
            row("TLS", "rediss:// (REDIS_TLS_URL)" if tls_url else "not offered"),
        ],
    })
