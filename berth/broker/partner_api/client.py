"""The HTTP client Berth uses to call every add-on provider, third-party or first-party
(`specs/partner-api.md` §2.1–2.4).

It never raises for anything a provider does: every call ends in a `ProviderAnswer` whose
`outcome` the broker's state machine acts on. `message` is the provider's own text for users;
`detail` is for operators and never holds the password or config values (they are credentials).
"""
from __future__ import annotations

import base64
import enum
import http.cookiejar
import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase

from berth.outbound import TargetPolicy, TargetRefused

if TYPE_CHECKING:
    from berth.config import Settings

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.heroku-addons+json; version=3"
USER_AGENT = "Berth-Broker/1 (partner API v3)"
SLOW_CALL_SECONDS = 3.0  # §2.1: providers should answer within 3 s; slower calls are logged
MAX_BODY_BYTES = 1 << 20  # an answer is a small JSON object; refuse to buffer more
MAX_MESSAGE_CHARS = 1000
MAX_DETAIL_CHARS = 500
LOG_DRAIN_URL = re.compile(r"^(https|syslog)://\S+\Z")
# Provision, plan change and deprovision carry the add-on's uuid, so sending one again after a
# connection error (reset, refused while the provider restarts) changes nothing twice.
IDEMPOTENT = frozenset({"provision", "plan change", "deprovision", "grant", "revoke"})
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # seconds before each further attempt: about 4 s in all


@dataclass(frozen=True)
class ProviderEndpoint:
    service: str            # manifest id: the Basic-auth user name
    password: str = field(repr=False)  # manifest api.password: kept out of repr, logs and messages
    base_url: str           # api.production.base_url; a path (/providers/...) is Berth's own
    config_vars: tuple[str, ...] = ()   # declared api.config_vars: answers with other keys are malformed
    requires: tuple[str, ...] = ()      # e.g. ("syslog_drain",): then log_drain_url is required


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"     # 200/201 (and 204 for deprovision / plan change)
    ACCEPTED = "accepted"       # 202: finishes later through the partner endpoints
    REFUSED = "refused"         # 422 or other 4xx except 401/404/410: the provider said no;
                                # `message` is user-safe
    GONE = "gone"               # 404/410 (success for deprovision, failure for others)
    UNAUTHORIZED = "unauthorized"  # 401: Berth's credentials rejected (operator problem)
    FAILED = "failed"           # 5xx, timeout, connection/TLS error, malformed 2xx


@dataclass(frozen=True)
class ProviderAnswer:
    outcome: Outcome
    status: int | None              # HTTP status, None when no answer
    provider_id: str | None = None  # from provision `id` (numbers coerced to str)
    config: dict[str, str] = field(default_factory=dict)
    message: str | None = None      # provider's `message`, shown to users (trimmed to 1000 chars)
    log_drain_url: str | None = None
    detail: str = ""                # for operators' logs only: what went wrong (no secrets)
    result: Any = None              # an action's `result` (Berth's extension, first-party providers)
    connection_error: bool = False  # no answer: the connection failed, was reset or dropped


class _Malformed(Exception):
    """A 2xx answer that breaks the contract; the text names keys, never values."""


class _BasicAuth(AuthBase):
    """Basic auth encoded as UTF-8 (requests' own uses latin-1, which fails on other passwords).

    Passing an auth object also keeps requests from replacing the header with ~/.netrc entries.
    """

    def __init__(self, user: str, password: str) -> None:
        self._header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request


class ProviderClient:
    """One pooled `requests.Session` for all providers; safe to share between worker threads
    because nothing per-call is kept on it (cookies are refused, auth is passed per request).

    `targets` decides which addresses may be called (public ones only, by default); `own_url` is
    Berth's own API URL, which a first-party provider's base URL (a path) is relative to.
    """

    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 targets: TargetPolicy = TargetPolicy(), own_url: str = "",
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.targets, self.own_url, self.retry_delays = targets, own_url.rstrip("/"), retry_delays
        self._session = targets.session()
        # A provider's cookies must not leak into calls about other resources or threads.
        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self._session.headers.update({"Accept": ACCEPT, "User-Agent": USER_AGENT})

    @classmethod
    def for_settings(cls, settings: "Settings") -> "ProviderClient":
        """The client a Berth process uses: its own URL, timeouts and address policy."""
        return cls(read_timeout=settings.provider_timeout_seconds, targets=TargetPolicy.from_settings(settings),
                   own_url=settings.api_url)

    def close(self) -> None:
        self._session.close()

    def provision(self, endpoint: ProviderEndpoint, *, uuid: str, name: str, plan: str, region: str,
                  callback_url: str, options: dict[str, str], oauth_grant: dict[str, str] | None,
                  log_input_url: str | None = None, log_drain_token: str | None = None) -> ProviderAnswer:
        body: dict[str, Any] = {"uuid": uuid, "name": name, "plan": plan, "region": region,
                                "callback_url": callback_url, "options": options,
                                "oauth_grant": oauth_grant}
        # Only what the manifest's `requires` asked for (the caller decides; §1.4).
        if log_input_url is not None:
            body["log_input_url"] = log_input_url
        if log_drain_token is not None:
            body["log_drain_token"] = log_drain_token
        return self._call("provision", endpoint, "POST", self._base(endpoint), body)

    def change_plan(self, endpoint: ProviderEndpoint, resource_id: str, plan: str) -> ProviderAnswer:
        return self._call("plan change", endpoint, "PUT", _resource_url(self._base(endpoint), resource_id),
                          {"plan": plan})

    def action(self, endpoint: ProviderEndpoint, resource_id: str, action: str,
               params: dict[str, Any]) -> ProviderAnswer:
        """Berth's extension of the partner API: `POST <base>/<id>/actions/<action>` `{"params"}`
        answered `{"message"?, "config"?, "result"?}` (credential rotation, backups, topics...)."""
        url = f"{_resource_url(self._base(endpoint), resource_id)}/actions/{quote(action, safe='')}"
        return self._call("action", endpoint, "POST", url, {"params": params})

    def grant(self, endpoint: ProviderEndpoint, resource_id: str, grant_id: str) -> ProviderAnswer:
        """Berth's extension (manifest `requires` `grants`): `PUT <base>/<id>/grants/<grant id>`
        answered `{"config"}`: credentials of the grant's own, under the manifest's config var names."""
        return self._call("grant", endpoint, "PUT", _grant_url(self._base(endpoint), resource_id, grant_id), None)

    def revoke(self, endpoint: ProviderEndpoint, resource_id: str, grant_id: str) -> ProviderAnswer:
        """`DELETE <base>/<id>/grants/<grant id>`: 204, or 404/410 (GONE) when there is none."""
        return self._call("revoke", endpoint, "DELETE", _grant_url(self._base(endpoint), resource_id, grant_id), None)

    def deprovision(self, endpoint: ProviderEndpoint, resource_id: str) -> ProviderAnswer:
        return self._call("deprovision", endpoint, "DELETE", _resource_url(self._base(endpoint), resource_id), None)

    def _base(self, endpoint: ProviderEndpoint) -> str:
        base = endpoint.base_url
        return self.own_url + base if base.startswith("/") and self.own_url else base

    def _call(self, kind: str, endpoint: ProviderEndpoint, method: str, url: str,
              body: dict[str, Any] | None) -> ProviderAnswer:
        delays = list(self.retry_delays) if kind in IDEMPOTENT else []
        while True:
            answer = self._attempt(kind, endpoint, method, url, body)
            if not (answer.connection_error and delays):
                return answer
            delay = delays.pop(0)
            log.info("%s %s: %s; trying again in %.1f s", endpoint.service, kind, answer.detail, delay)
            time.sleep(delay)

    def _attempt(self, kind: str, endpoint: ProviderEndpoint, method: str, url: str,
                 body: dict[str, Any] | None) -> ProviderAnswer:
        started = time.monotonic()
        status: int | None = None
        try:
            status, raw = self._send(endpoint, method, url, body, started)
            answer = _classify(kind, endpoint, status, raw, self.targets)
        except TargetRefused as refused:  # nothing was sent
            answer = ProviderAnswer(Outcome.REFUSED, None, message=_trim(
                f"{endpoint.service} cannot be reached: {refused}", MAX_MESSAGE_CHARS),
                detail=_trim(f"{kind}: {refused}", MAX_DETAIL_CHARS))
        except requests.Timeout:
            limits = f"connect {self.connect_timeout:g} s, read {self.read_timeout:g} s"
            answer = ProviderAnswer(Outcome.FAILED, status,
                                    detail=f"{kind}: no answer within the timeout ({limits})")
        except (requests.RequestException, ValueError) as error:  # connection, TLS, bad URL
            problem = _trim(f"{kind}: {type(error).__name__}: {error}", MAX_DETAIL_CHARS)
            # Reset, refused, dropped: the call can be made again (a TLS error is not that).
            dropped = isinstance(error, requests.ConnectionError) and not isinstance(error, requests.exceptions.SSLError)
            answer = ProviderAnswer(Outcome.FAILED, status, detail=problem, connection_error=dropped)
        elapsed = time.monotonic() - started
        if elapsed > SLOW_CALL_SECONDS:
            log.warning("slow provider call: %s %s took %.1f s (status %s)",
                        endpoint.service, kind, elapsed, answer.status)
        return answer

    def _send(self, endpoint: ProviderEndpoint, method: str, url: str, body: dict[str, Any] | None,
              started: float) -> tuple[int, bytes]:
        # No redirects: following one would carry the credentials to wherever it points.
        response = self._session.request(
            method, url, json=body, auth=_BasicAuth(endpoint.service, endpoint.password),
            headers={"Content-Type": "application/json"},
            timeout=(self.connect_timeout, self.read_timeout), allow_redirects=False, stream=True)
        with response:
            # requests' read timeout is per socket read; also bound the whole exchange.
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ValueError(f"answer body larger than {MAX_BODY_BYTES} bytes")
                if time.monotonic() - started > self.connect_timeout + self.read_timeout:
                    raise requests.Timeout("answer body still arriving after the total timeout")
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)


def _resource_url(base_url: str, resource_id: str) -> str:
    # The id is one path segment whatever it contains (§2.3: base_url + "/" + id).
    return base_url.rstrip("/") + "/" + quote(resource_id, safe="")


def _grant_url(base_url: str, resource_id: str, grant_id: str) -> str:
    return f"{_resource_url(base_url, resource_id)}/grants/{quote(grant_id, safe='')}"


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is empty, not JSON or not an object."""
    try:
        value = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or absurdly nested
        return None
    return value if isinstance(value, dict) else None


def _message(document: dict[str, Any] | None) -> str | None:
    text = (document or {}).get("message")
    return _trim(text, MAX_MESSAGE_CHARS) if isinstance(text, str) and text.strip() else None


def _classify(kind: str, endpoint: ProviderEndpoint, status: int, raw: bytes,
              targets: TargetPolicy) -> ProviderAnswer:
    document = _json_object(raw)
    if status == 401:
        rejected = f"{kind}: the provider rejected the credentials for {endpoint.service!r}"
        return ProviderAnswer(Outcome.UNAUTHORIZED, status, detail=rejected)
    if status in (404, 410):
        return ProviderAnswer(Outcome.GONE, status, message=_message(document),
                              detail=f"{kind}: the provider does not know the resource ({status})")
    if 400 <= status < 500:
        return ProviderAnswer(Outcome.REFUSED, status, message=_message(document),
                              detail=f"{kind}: refused by the provider ({status})")
    if not 200 <= status < 300:
        what = "redirects are not followed" if 300 <= status < 400 else "provider error"
        return ProviderAnswer(Outcome.FAILED, status, detail=f"{kind}: HTTP {status} ({what})")
    try:
        if kind == "provision":
            return _provision_answer(endpoint, status, raw, document, targets)
        return _other_answer(kind, endpoint, status, document)
    except _Malformed as error:
        return ProviderAnswer(Outcome.FAILED, status, detail=f"{kind}: malformed {status} answer: {error}")


def _provision_answer(endpoint: ProviderEndpoint, status: int, raw: bytes,
                      document: dict[str, Any] | None, targets: TargetPolicy) -> ProviderAnswer:
    if document is None:
        raise _Malformed("not a JSON object" if raw.strip() else "empty body")
    provider_id = document.get("id")
    # Legacy providers sent numeric ids (§2.2); bool is an int in Python but never an id.
    if isinstance(provider_id, int) and not isinstance(provider_id, bool):
        provider_id = str(provider_id)
    if not isinstance(provider_id, str) or not provider_id.strip():
        raise _Malformed("no string `id`")
    drain = document.get("log_drain_url")
    valid_drain = drain if isinstance(drain, str) and _valid_drain_url(drain, targets) else None
    if "syslog_drain" not in endpoint.requires:
        valid_drain = None  # not asked for: ignored rather than failing the install
    if status == 202:  # config (and perhaps the drain) arrive later through the partner endpoints (§3.2)
        return ProviderAnswer(Outcome.ACCEPTED, status, provider_id=provider_id, message=_message(document),
                              log_drain_url=valid_drain)
    if "syslog_drain" in endpoint.requires and valid_drain is None:
        raise _Malformed("`log_drain_url` (https:// or syslog://) is required by syslog_drain")
    drain = valid_drain
    return ProviderAnswer(Outcome.SUCCEEDED, status, provider_id=provider_id,
                          config=_config(endpoint, document), message=_message(document),
                          log_drain_url=drain)


def _other_answer(kind: str, endpoint: ProviderEndpoint, status: int,
                  document: dict[str, Any] | None) -> ProviderAnswer:
    # Plan change and deprovision: an empty 204 or a legacy non-JSON "ok" is plain success.
    outcome = Outcome.ACCEPTED if status == 202 else Outcome.SUCCEEDED
    with_config = kind in ("plan change", "action", "grant") and outcome is Outcome.SUCCEEDED
    config = _config(endpoint, document) if with_config else {}
    if kind == "grant" and outcome is Outcome.SUCCEEDED and not config:
        raise _Malformed("a grant answered no `config`")
    result = (document or {}).get("result") if kind == "action" else None
    return ProviderAnswer(outcome, status, config=config, message=_message(document), result=result)


def _config(endpoint: ProviderEndpoint, document: dict[str, Any] | None) -> dict[str, str]:
    """`config` checked against §1.5; error texts name keys only, values are credentials."""
    config = (document or {}).get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _Malformed("`config` is not an object")
    undeclared = sorted(str(key) for key in config if key not in endpoint.config_vars)
    if undeclared:
        raise _Malformed(f"config keys {undeclared} are not declared in the manifest's config_vars")
    not_strings = sorted(key for key, value in config.items() if not isinstance(value, str))
    if not_strings:
        raise _Malformed(f"config values of {not_strings} are not strings")
    bad_urls = sorted(key for key, value in config.items()
                      if key.endswith("_URL") and not _has_scheme_and_host(value))
    if bad_urls:
        raise _Malformed(f"config values of {bad_urls} are not URLs with a scheme and a host")
    return dict(config)


def _has_scheme_and_host(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return bool(parts.scheme and parts.hostname)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return False


def _valid_drain_url(url: str, targets: TargetPolicy) -> bool:
    """§2.2's `^(https|syslog)://\\S+$`, plus plain http to this machine for first-party drains
    (the same exception the manifest makes for loopback base URLs); and one the installation's
    address policy lets Berth deliver to (the forwarder checks again when it connects)."""
    try:
        targets.check_url(url, what="log drain URL")
    except TargetRefused:
        return False
    if LOG_DRAIN_URL.match(url):
        return True
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return parts.scheme == "http" and not re.search(r"\s", url) and (
            host == "localhost" or ipaddress.ip_address(host).is_loopback)
    except ValueError:
        return False
