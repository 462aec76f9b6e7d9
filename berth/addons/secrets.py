"""Secrets the first-party providers derive rather than store: each manifest password and SSO salt
is an HMAC of one installation secret (made once under the data dir, mode 0600), so every process
(web, worker, backends) computes the same value and nothing per service needs keeping."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from berth.config import Settings


def derived_secret(settings: Settings, purpose: str) -> str:
    path = settings.data_dir / "providers.key"
    if not path.exists():
        _create(path)
    return hmac.new(path.read_bytes(), purpose.encode(), hashlib.sha256).hexdigest()


def provider_password(settings: Settings, service: str) -> str:
    return derived_secret(settings, f"password:{service}")


def provider_sso_salt(settings: Settings, service: str) -> str:
    return derived_secret(settings, f"sso-salt:{service}")


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
