"""Finishing an accepted (202) provision the way any partner does (`specs/partner-api.md` §3.2,
§4.5): exchange the provision's single-use OAuth grant at `<Berth>/oauth/token` with the service's
client secret, `PATCH <callback_url>/config` with the add-on's config, then
`POST <callback_url>/actions/provision`.

The grant can be exchanged once, so the access token is handed to `save_token` (the provider
keeps it in the add-on's encrypted record) before it is used: a retry after a lost answer goes
on with the token instead of a spent code.
"""
from __future__ import annotations

import enum
import logging
from typing import Any, Callable, Mapping

import requests

from berth.addons.secrets import derived_secret
from berth.config import Settings

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.heroku+json; version=3"
TIMEOUT = (5.0, 30.0)  # connect, read


class Outcome(enum.Enum):
    DONE = "done"        # Berth has the config and the add-on is provisioned
    GAVE_UP = "gave up"  # Berth refused for good (the add-on is gone, the grant is spent): logged
    RETRY = "retry"      # Berth could not be reached or failed: try again later


class _Refused(Exception):
    """Berth answered 4xx: trying again cannot help."""


def client_secret(settings: Settings) -> str:
    """The OAuth client secret of the `kafka` service: derived, so every process knows it."""
    return derived_secret(settings, "client-secret:kafka")


def complete(settings: Settings, uuid: str, pending: Mapping[str, Any], config: Mapping[str, str],
             save_token: Callable[[str], None]) -> Outcome:
    """Tell Berth that add-on `uuid` is ready with `config`. Never raises; failures are logged
    (without secrets) and reported as an Outcome."""
    callback_url = str(pending.get("callback_url") or "").rstrip("/")
    suffix = f"/addons/{uuid}"
    if not callback_url.endswith(suffix):
        log.error("kafka %s: the callback URL does not name the add-on; cannot finish the provision", uuid)
        return Outcome.GAVE_UP
    platform = callback_url[: -len(suffix)]
    step = "exchanging the grant"
    try:
        token = pending.get("token")
        if not token:
            token = _exchange(settings, platform, str((pending.get("grant") or {}).get("code") or ""))
            save_token(token)
        headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
        step = "setting the config"
        _call("PATCH", callback_url + "/config", headers,
              {"config": [{"name": name, "value": value} for name, value in config.items()]})
        step = "declaring it provisioned"
        _call("POST", callback_url + "/actions/provision", headers, None)
    except _Refused as refused:
        hint = (" The kafka service's client secret in Berth's catalogue is not the one this installation "
                "derives: register the built-in add-ons again." if "HTTP 401" in str(refused) else "")
        log.error("kafka %s: Berth refused while %s (%s); the provision is abandoned (Berth deprovisions the "
                  "add-on, or fails it at its deadline).%s", uuid, step, refused, hint)
        return Outcome.GAVE_UP
    except (requests.RequestException, ValueError) as exc:
        log.warning("kafka %s: %s failed (%s); trying again shortly", uuid, step, type(exc).__name__)
        return Outcome.RETRY
    log.info("kafka %s: asynchronous provision finished", uuid)
    return Outcome.DONE


def _exchange(settings: Settings, platform: str, code: str) -> str:
    if not code:
        raise _Refused("the provision carried no grant code")
    answer = _call("POST", platform + "/oauth/token", {"Accept": "application/json"}, None,
                   form={"grant_type": "authorization_code", "code": code,
                         "client_secret": client_secret(settings)})
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if isinstance(token, dict):  # the Platform API form {"access_token": {"token": ...}}
        token = token.get("token")
    if not isinstance(token, str) or not token:
        raise ValueError("the token answer holds no access_token")
    return token


def _call(method: str, url: str, headers: dict[str, str], body: Any,
          form: dict[str, str] | None = None) -> Any:
    response = requests.request(method, url, headers=headers, json=body, data=form, timeout=TIMEOUT,
                                allow_redirects=False)
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        message = response.json().get("message", "") if _is_json(response) else ""
        raise _Refused(f"HTTP {response.status_code} {message}"[:300])
    if response.status_code >= 300:
        raise requests.HTTPError(f"HTTP {response.status_code}")
    return response.json() if _is_json(response) else None


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
        return True
    except ValueError:
        return False


__all__ = ["Outcome", "client_secret", "complete"]
