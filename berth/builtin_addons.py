"""The first-party add-ons, wired by the composition root: each provider is built, served as a
partner under `/providers/<service>`, and put in the catalogue from its own manifest, so the broker
reaches it over HTTP exactly as it reaches a third party."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from berth.addons.secrets import provider_password, provider_sso_salt

if TYPE_CHECKING:
    from flask import Flask

    from berth.broker.partner_api.provider import Provider
    from berth.config import Settings
    from berth.db import Database

REGISTRATION_LOCK = 4242002


def build_providers(database: "Database", settings: "Settings") -> dict[str, "Provider"]:
    from berth.addons.kafka.provider import KafkaProvider
    from berth.addons.logging.provider import LogsProvider
    from berth.addons.postgres.provider import PostgresProvider
    from berth.addons.redis.provider import RedisProvider

    return {"postgresql": PostgresProvider(database, settings), "redis": RedisProvider(database, settings),
            "kafka": KafkaProvider(database, settings), "logs": LogsProvider(database, settings)}


def full_manifest(provider: "Provider", settings: "Settings", *, origin: str | None = None) -> dict[str, Any]:
    """The provider's manifest with its endpoints under `origin` (this process's API URL by
    default). The catalogue keeps them as paths (origin ""): each Berth process calls them on its
    own URL, so a process started with another BERTH_PORT (`make migrate`) cannot re-point them."""
    manifest = provider.manifest()
    service = manifest["id"]
    base = f"{settings.api_url if origin is None else origin}/providers/{service}"
    endpoints = {"base_url": f"{base}/heroku/resources"}
    sso_path = getattr(provider, "sso_path", None)  # providers with a dashboard of their own
    extra: dict[str, str] = {}
    if sso_path:
        endpoints["sso_url"] = base + sso_path
        extra["sso_salt"] = provider_sso_salt(settings, service)
    manifest["api"] = {**manifest["api"], "password": provider_password(settings, service), **extra,
                       "production": dict(endpoints), "test": dict(endpoints)}
    return manifest


def install(app: "Flask", database: "Database", settings: "Settings") -> None:
    from berth.broker import catalogue
    from berth.broker.partner_api.server import provider_blueprint

    providers = build_providers(database, settings)
    app.extensions["berth.providers"] = providers
    for service, provider in providers.items():
        app.register_blueprint(provider_blueprint(
            service, provider, lambda service=service: provider_password(settings, service)))  # type: ignore[misc]
        own_routes = getattr(provider, "blueprint", None)  # ingest, search, dashboard pages
        if own_routes is not None:
            app.register_blueprint(own_routes())
    with database.transaction() as session:
        if not database.is_sqlite:  # web processes start together: one registers at a time
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRATION_LOCK})
        for provider in providers.values():
            manifest = full_manifest(provider, settings, origin="")
            if not catalogue.manifest_unchanged(session, manifest, own_paths=True):  # a restart changes nothing
                catalogue.register_manifest(session, manifest, owner=None, own_paths=True)
