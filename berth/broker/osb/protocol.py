"""What every OSB request shares (`specs/osbapi.md` §3-5): Basic auth per platform, the version
header, identity headers, and the error bodies. Checked in the spec's order: 401, then 412, then
the body (400), then the semantics."""
from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from flask import Response, g, jsonify, request

log = logging.getLogger("berth.osb")

MIN_VERSION, MAX_VERSION = (2, 13), (2, 17)
_VERSION = re.compile(r"^2\.(\d{1,3})\Z")
# Platform-chosen ids: RFC 3986 unreserved characters only (Berth's choice; GUIDs and names pass).
ID_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{1,255}\Z")
ASYNC_REQUIRED = "This service plan requires client support for asynchronous service operations."


class OsbError(Exception):
    """An OSB refusal: `status` and the spec's error body (`error` only where the spec names one)."""

    def __init__(self, status: int, description: str | None = None, error: str | None = None,
                 **extra: Any) -> None:
        super().__init__(description or error or str(status))
        self.status, self.description, self.error, self.extra = status, description, error, extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.error:
            body["error"] = self.error
        if self.description:
            body["description"] = self.description
        body.update({key: value for key, value in self.extra.items() if value is not None})
        return body


def bad_request(description: str) -> OsbError:
    return OsbError(400, description)


def async_required() -> OsbError:
    return OsbError(422, ASYNC_REQUIRED, "AsyncRequired")


def concurrency_error(description: str) -> OsbError:
    return OsbError(422, description, "ConcurrencyError")


def render(error: OsbError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Berth Open Service Broker"'
    return response


@dataclass(frozen=True)
class BasicCredentials:
    username: str
    password: str


def basic_credentials(header: str | None) -> BasicCredentials | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return BasicCredentials(username, password) if sep and username and password else None


def parse_version(header: str | None) -> tuple[int, int]:
    """`2.13`..`2.17`, and leniently any later 2.x; missing, empty, older or not 2.x: 412."""
    match = _VERSION.match((header or "").strip())
    if match is None or (2, int(match.group(1))) < MIN_VERSION:
        raise OsbError(412, f"X-Broker-API-Version {header or '(missing)'} is not supported; send 2.13 to 2.17.",
                       "PreconditionFailed")
    return 2, int(match.group(1))


def version() -> tuple[int, int]:
    return g.osb_version  # type: ignore[no-any-return]


def at_least(minor: int) -> bool:
    return version() >= (2, minor)


def log_identity() -> None:
    """The originating identity (`<platform> <base64 JSON>`) and request identity, logged for
    audit; a malformed originating identity is a 400."""
    originating = request.headers.get("X-Broker-API-Originating-Identity")
    identity: Any = None
    platform = None
    if originating is not None:
        platform, _, encoded = originating.strip().partition(" ")
        try:
            identity = json.loads(base64.b64decode(encoded.strip(), validate=True))
        except (binascii.Error, ValueError):
            identity = None
        if not platform or not isinstance(identity, dict):
            raise bad_request("X-Broker-API-Originating-Identity must be '<platform> <base64 of a JSON object>'.")
    log.info("osb %s %s client=%s version=%d.%d request_identity=%s originating=%s %s", request.method,
             request.path, g.osb_client_username, *version(), request_identity() or "-", platform or "-",
             json.dumps(identity, sort_keys=True) if identity is not None else "-")


def request_identity() -> str | None:
    sent = (request.headers.get("X-Broker-API-Request-Identity") or "").strip()
    return sent[:200] if sent and sent.isprintable() else None


def check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise bad_request(f"The {what} may only contain letters, digits, '.', '_', '~' and '-' (1 to 255).")
    return value


def json_body() -> dict[str, Any]:
    """The request's JSON object: anything else, or another content type, is a 400."""
    content_type = request.mimetype
    if content_type and content_type != "application/json":
        raise bad_request(f"Send JSON (Content-Type: application/json), not {content_type}.")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise bad_request("The request needs a JSON object body.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body


def flag(name: str) -> bool:
    """A boolean query parameter (`accepts_incomplete=true`)."""
    value = request.args.get(name, "")
    if value.lower() not in ("", "true", "false"):
        raise bad_request(f"{name} must be true or false.")
    return value.lower() == "true"
