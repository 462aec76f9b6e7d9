"""The self-authorising URLs of a source: `<api_url>/source-blobs/<token>`, the token signed for
`source:put` (upload) or `source:get` (download) on the source's id, valid for URL_TTL_SECONDS."""
from __future__ import annotations

from urllib.parse import urlsplit

from berth import signed_urls

URL_TTL_SECONDS = 3600  # as Heroku's pre-signed S3 URLs: an hour to upload and start a build
PATH = "/source-blobs/"
PUT, GET = "source:put", "source:get"


def source_urls(api_url: str, source_id: str) -> dict[str, str]:
    """The `source_blob` of POST /sources: a get_url and a put_url."""
    return {purpose: f"{api_url}{PATH}{signed_urls.sign(signed, source_id, ttl_seconds=URL_TTL_SECONDS)}"
            for purpose, signed in (("get_url", GET), ("put_url", PUT))}


def own_token(url: str, own_origins: set[tuple[str, str, int]]) -> str | None:
    """The token of a get_url Berth made (on one of the origins it answers on), else None."""
    try:
        parts = urlsplit(url)
        origin = (parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme))
    except ValueError:
        return None
    if origin not in own_origins or not parts.path.startswith(PATH) or parts.query or parts.fragment:
        return None
    token = parts.path[len(PATH):]
    return token if token and "/" not in token else None
