"""The `source_blob` builds and app setups take, refused at the edge in Heroku's error shape."""
from __future__ import annotations

from typing import Any

import pytest

from berth.errors import InvalidParams
from berth.httpapi.body import load
from berth.platform.sources.schemas import SourceBlobInputSchema

SHA = "SHA256:" + "ab" * 32


def test_a_source_blob_with_url_checksum_and_version_loads() -> None:
    loaded = load(SourceBlobInputSchema(), {"url": "http://127.0.0.1:5000/source-blobs/x", "checksum": SHA,
                                            "version": "v1"})
    assert loaded == {"url": "http://127.0.0.1:5000/source-blobs/x", "checksum": SHA, "version": "v1",
                      "version_description": None}
    assert load(SourceBlobInputSchema(), {"url": "https://example.com/a.tgz", "version": ""})["checksum"] is None


@pytest.mark.parametrize("blob,field", [
    ({}, "url"), ({"url": "file:///etc/passwd"}, "url"), ({"url": "gopher://x/1"}, "url"),
    ({"url": "https://example.com/a.tgz", "checksum": "MD5:abc"}, "checksum"),
    ({"url": "https://example.com/a.tgz", "checksum": "SHA256:" + "a" * 63}, "checksum"),
    ({"url": "https://example.com/a.tgz", "unknown": 1}, "unknown"),
])
def test_malformed_source_blobs_are_refused_naming_the_field(blob: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=field):
        load(SourceBlobInputSchema(), blob)
