"""Berth's web pages: marketplace, dashboard, partner portal, sign-in (server-rendered HTML).

Pages combine the platform (apps, config vars, releases) and the broker (catalogue, add-ons), so
they sit above both, like `create_app`; nothing below imports them. Templates are in
`berth/templates/web/`, styles and the one small script in `berth/static/`.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask

from berth.config import Settings
from berth.installation_secrets import installation_secret


def _session_secret(settings: Settings) -> bytes:
    """The key that signs session cookies and CSRF tokens: one per installation, so every web
    process of it, on every node, signs alike."""
    secret = installation_secret(settings, "session")
    return hmac.new(secret, b"berth-web-session", hashlib.sha256).digest()


def install(app: Flask, settings: Settings) -> None:
    # The route modules register their pages on `pages.blueprint` when imported.
    from berth.web import (account, addon_pages, auth_pages, dashboard, deploy_pages, dyno_pages,  # noqa: F401
                           marketplace, pages, partners)
    from berth.web import security_headers

    app.secret_key = _session_secret(settings)
    app.config.update(
        SESSION_COOKIE_NAME="berth_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.api_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        WTF_CSRF_TIME_LIMIT=3600,  # a form older than an hour is refused: reload it
    )
    app.register_blueprint(pages.blueprint)
    security_headers.install(app)
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("web.") or endpoint == "static":
            view.berth_public = True  # type: ignore[attr-defined]  # pages check the session cookie
