"""The Postgres half of the data API: `pg:info` (`/client/v11/databases/{id}`), `pg:credentials`
and `pg:credentials:url` (`/postgres/v0/databases/{id or name}/credentials[/{name}]`).

Berth's Postgres add-ons have one credential, `default`: the user in DATABASE_URL."""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from berth.broker.data_api import blueprint
from berth.broker.data_api.lookup import DataAddOn, data_addon, row, size
from berth.broker.data_api.schemas import CredentialSchema, DatabaseInfoSchema
from berth.errors import NotFound
from berth.httpapi.openapi import describe

SERVICE = "postgresql"   # the first-party Postgres provider's manifest id
KIND = "Postgres database"
URL_VAR = "DATABASE_URL"
DEFAULT_CREDENTIAL = "default"


def _database(ref: str, with_info: bool = False) -> DataAddOn:
    return data_addon(ref, SERVICE, KIND, with_info=with_info)


def _url(addon: DataAddOn) -> str:
    url = addon.config.get(URL_VAR)
    if not url:
        raise NotFound(f"{addon.name} has no {URL_VAR} yet; run `heroku addons:wait {addon.name}`.",
                       resource="add_on")
    return url


@blueprint.get("/client/v11/databases/<ref>")
@describe(summary="A Postgres add-on's details, as `heroku pg:info` shows them", response=DatabaseInfoSchema)
def database_info(ref: str) -> Any:
    addon = _database(ref, with_info=True)
    info = addon.info
    used, limit = info.get("storage_used_bytes"), info.get("storage_limit_bytes")
    connections = info.get("connections")
    return DatabaseInfoSchema().dump({
        "addon_id": addon.id, "name": addon.name, "plan": addon.plan,
        "resource_url": _url(addon),  # the CLI matches it against config values to name the vars
        "info": [
            row("Plan", addon.plan),
            row("Status", info.get("status")),
            row("Data Size", f"{size(used)} / {size(limit)}" if limit else size(used)),
            row("Connection Limit", connections),
            row("Backups", info.get("backups")),
            row("Created", addon.created_at.strftime("%Y-%m-%d %H:%M UTC")),
        ],
    })


def _credential(addon: DataAddOn, with_password: bool) -> dict[str, Any]:
    parts = urlsplit(_url(addon))
    user = {"user": unquote(parts.username or ""), "state": "active"}
    if with_password:
        user["password"] = unquote(parts.password or "")
    return {"uuid": addon.id, "name": DEFAULT_CREDENTIAL, "state": "active",
            "database": unquote(parts.path.lstrip("/")), "host": parts.hostname, "port": parts.port or 5432,
            "credentials": [user]}


@blueprint.get("/postgres/v0/databases/<ref>/credentials")
@describe(summary="A Postgres add-on's credentials (names and states, no passwords): `pg:credentials`",
          response=CredentialSchema, many=True)
def list_credentials(ref: str) -> Any:
    return CredentialSchema(many=True).dump([_credential(_database(ref), with_password=False)])


@blueprint.get("/postgres/v0/databases/<ref>/credentials/<name>")
@describe(summary="One credential with its password: `pg:credentials:url`", response=CredentialSchema)
def show_credential(ref: str, name: str) -> Any:
    addon = _database(ref)
    if name != DEFAULT_CREDENTIAL:
        raise NotFound(f"{addon.name} has only the `default` credential; named credentials are not "
                       "offered by Berth's Postgres.", resource="credential")
    return CredentialSchema().dump(_credential(addon, with_password=True))
