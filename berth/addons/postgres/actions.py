"""The Postgres add-on's actions (Berth's extension of the partner API), what `berth pg:*` runs:

    info                  plan, storage used and allowed, connections, restriction, backups
    credentials-rotate    a new password; DATABASE_URL changes on every attached app (a release)
    backups-capture       pg_dump now            backups-list       the kept backups
    backups-restore       {"backup": "b001"}     backups-url        {"backup"}: a 10-minute download URL
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, send_file

from berth.addons.postgres import backups
from berth.broker.partner_api.provider import ActionResult, ProviderError
from berth.broker.partner_api.server import provider_route

if TYPE_CHECKING:
    from berth.addons.postgres.provider import PostgresProvider

NAMES = ("info", "credentials-rotate", "backups-capture", "backups-list", "backups-restore", "backups-url")


def run(provider: "PostgresProvider", uuid: str, name: str, params: dict[str, Any]) -> ActionResult:
    resource = provider.active(uuid)
    if name == "info":
        used, limit = provider.storage_used(uuid), provider.storage_limit(resource.plan)
        return ActionResult(result={
            "plan": resource.plan, "storage_used_bytes": used, "storage_limit_bytes": limit,
            "connections": provider.connection_limit(resource.plan),
            "status": "Access restricted: over the plan's storage" if resource.restricted else "Available",
            "server": resource.location, "backups": len(backups.listing(provider.settings, uuid))})
    if name == "credentials-rotate":
        config = provider.rotate_credentials(uuid)
        return ActionResult(message="Credentials rotated; open connections were reset.", config=config)
    if name == "backups-capture":
        entry = backups.capture(provider.settings, uuid, resource.details)
        return ActionResult(message=f"Backup {entry['id']} captured.", result=entry)
    if name == "backups-list":
        return ActionResult(result=backups.listing(provider.settings, uuid))
    if name in ("backups-restore", "backups-url"):
        backup_id = params.get("backup")
        if not isinstance(backup_id, str):
            raise ProviderError("Name the backup (for example b001); `pg:backups` lists them.", 422)
        if name == "backups-url":
            return ActionResult(result={"url": backups.download_url(provider.settings, uuid, backup_id),
                                        "expires_in": backups.URL_SECONDS})
        backups.restore(provider.settings, uuid, resource.details, backup_id)
        return ActionResult(message=f"Backup {backup_id} restored.")
    raise ProviderError(f"Postgres has no action {name!r}; it has {', '.join(NAMES)}.", 404)


def download_blueprint(provider: "PostgresProvider") -> Blueprint:
    blueprint = Blueprint("provider_postgresql_routes", __name__, url_prefix="/providers/postgresql")

    @blueprint.get("/backups/<token>")
    @provider_route
    def download(token: str) -> Any:
        path = backups.file_for_token(provider.settings, token)
        if path is None:
            abort(404)
        return send_file(path, mimetype="application/octet-stream", as_attachment=True,
                         download_name=f"{path.stem}.dump")

    return blueprint
