"""Self-authorising URL tokens: what a client may do with one resource, until when, signed.

Some clients must reach a URL without an API key: the Heroku CLI PUTs a source tarball to the
`put_url` that `POST /sources` gave it with no Authorization header, and a build fetches its
`source_blob.url` the same way. Such a URL carries a token naming its purpose (`source:get`,
`slug:put`, …), the resource and an expiry, signed with a key derived from BERTH_SECRET_KEYS
for that purpose (rotating the keys keeps tokens signed before valid). Tokens are compared in
constant time and never stored.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from berth import crypto

_TOKEN = re.compile(r"^([A-Za-z0-9_-]{1,200})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")
_PURPOSE = re.compile(r"^[a-z][a-z0-9:_-]{0,60}$")


# A token inside other text (a request line in an access log): resource and expiry kept, signature cut.
_TOKEN_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{1,200}\.[0-9]{1,12}\.)[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


class InvalidToken(Exception):
    """Forged, altered, expired, or for another purpose or resource."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(key: bytes, purpose: str, resource: str, expires: int) -> str:
    return _b64(hmac.new(key, f"{purpose}\n{resource}\n{expires}".encode(), hashlib.sha256).digest())


def sign(purpose: str, resource: str, *, ttl_seconds: int, now: float | None = None) -> str:
    """A token allowing `purpose` on `resource` (an id: letters, digits, '-' and '_') for `ttl_seconds`."""
    if not _PURPOSE.match(purpose) or not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", resource):
        raise ValueError("purpose or resource has characters a token cannot carry")
    expires = int((time.time() if now is None else now) + ttl_seconds)
    key = crypto.keyring().derived_keys(f"signed-url:{purpose}")[0]
    return f"{resource}.{expires}.{_signature(key, purpose, resource, expires)}"


def verify(purpose: str, token: str, *, now: float | None = None) -> str:
    """The resource `token` allows `purpose` on; InvalidToken otherwise (say 404 or 403, never why)."""
    found = _TOKEN.match(token or "")
    if found is None:
        raise InvalidToken("malformed")
    resource, expires, signature = found.group(1), int(found.group(2)), found.group(3)
    genuine = False
    for key in crypto.keyring().derived_keys(f"signed-url:{purpose}"):
        genuine |= hmac.compare_digest(_signature(key, purpose, resource, expires), signature)
    if not genuine:
        raise InvalidToken("bad signature")
    if (time.time() if now is None else now) > expires:
        raise InvalidToken("expired")
    return resource


def redact(text: str) -> str:
    """`text` with every token's signature replaced: what a log may keep of a self-authorising URL."""
    return _TOKEN_IN_TEXT.sub(r"\1[redacted]", text)
