"""Berth: a self-hosted, Heroku-style platform. `create_app` is the composition root.

Imports live inside create_app so that `berth.cli` (a pure HTTP client) starts without
loading Flask, SQLAlchemy or the server's modules.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from berth.config import Settings
    from berth.hooks import Hooks

__version__ = "0.1.0"


def wire_hooks(hooks: "Hooks") -> None:
    """The reverse flows between the layers, for every process (web, worker): the broker listens
    to the platform's events and answers its questions."""
    from berth.broker import manifest_addons
    from berth.broker.attachments import drain_addon
    from berth.broker.partner_auth import addon_for_token
    from berth.broker.partner_callbacks import partner_may_see_app
    from berth.broker.provisioning import on_app_destroying
    from berth.hooks import (ADDON_STATES, APP_DESTROYING, LOG_DRAIN_ADDON, MANIFEST_ADDONS, PARTNER_MAY_SEE_APP,
                             PARTNER_TOKEN_ADDON, REMOVE_ADDONS)

    hooks.register(APP_DESTROYING, on_app_destroying)
    hooks.answer(PARTNER_TOKEN_ADDON, addon_for_token)
    hooks.answer(PARTNER_MAY_SEE_APP, partner_may_see_app)
    hooks.answer(LOG_DRAIN_ADDON, drain_addon)
    hooks.answer(MANIFEST_ADDONS, manifest_addons.record_manifest_addons)
    hooks.answer(ADDON_STATES, manifest_addons.addon_states)
    hooks.answer(REMOVE_ADDONS, manifest_addons.remove_addons)
    from berth.platform.formation import register_defaults
    register_defaults(hooks)  # web=1 when code with a web process first goes live


def create_app(settings: "Settings | None" = None) -> "Flask":
    import logging

    from flask import Flask

    from berth import crypto
    from berth.broker.api import blueprint as broker_api
    from berth.broker.data_api import blueprint as data_api
    from berth.config import load_settings, prepare_data_dir
    from berth.db import Database
    from berth.httpapi import conventions
    from berth.httpapi.ca_certificate import blueprint as ca_certificate
    from berth.platform.api import blueprint as platform_api

    settings = settings or load_settings()
    prepare_data_dir(settings.data_dir)
    from berth.nodes import prepare_node
    prepare_node(settings)  # a node of several without the shared secrets stops here, saying which
    crypto.configure(crypto.load_or_create_keys(settings.secret_keys, settings.data_dir))
    database = Database(settings.database_url)
    database.migrate(settings.data_dir)

    app = Flask(__name__)
    app.config.update(BERTH_SETTINGS=settings, MAX_CONTENT_LENGTH=settings.max_body_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.extensions["berth.database"] = database
    app.extensions["berth.hooks"] = database.hooks
    wire_hooks(database.hooks)
    from berth.platform.app_cleanup import register_cleaner
    register_cleaner(database.hooks, database, settings)
    from berth.platform.runner.nudges import register_runner_nudges
    register_runner_nudges(database.hooks, settings.data_dir)
    conventions.install(app)
    app.register_blueprint(platform_api)
    app.register_blueprint(broker_api)
    from berth.broker.osb.api import blueprint as osb_api
    app.register_blueprint(osb_api)
    app.register_blueprint(data_api)
    app.register_blueprint(ca_certificate)
    if settings.builtin_addons:
        from berth import builtin_addons
        builtin_addons.install(app, database, settings)
    from berth import web
    web.install(app, settings)
    logging.getLogger("berth").setLevel(logging.INFO)
    return app
