"""Secrets the first-party providers derive rather than store: each manifest password and SSO salt
is an HMAC of one installation secret (berth.installation_secrets: a file in the data dir on one
machine, a row of the control-plane database shared by every node), so every process (web, worker,
backends) on every node computes the same value and nothing per service needs keeping."""
from __future__ import annotations

import hashlib
import hmac

from berth.config import Settings
from berth.installation_secrets import installation_secret


def derived_secret(settings: Settings, purpose: str) -> str:
    return hmac.new(installation_secret(settings, "providers"), purpose.encode(),
                    hashlib.sha256).hexdigest()


def provider_password(settings: Settings, service: str) -> str:
    return derived_secret(settings, f"password:{service}")


def provider_sso_salt(settings: Settings, service: str) -> str:
    return derived_secret(settings, f"sso-salt:{service}")
