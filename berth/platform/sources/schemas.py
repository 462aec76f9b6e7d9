"""POST /sources: no parameters in, the source_blob's two URLs out; and the `source_blob` that
builds and app setups take, validated at the edge."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from berth.httpapi.body import InputSchema
from berth.platform.sources.fetch import CHECKSUM


class SourceCreateSchema(InputSchema):
    """POST /sources takes no parameters (the CLI sends no body)."""


class SourceBlobSchema(Schema):
    get_url = fields.String(required=True, metadata={"description": "download URL, valid for an hour"})
    put_url = fields.String(required=True, metadata={"description": "upload URL (PUT, no credentials), "
                                                                     "valid for an hour"})


class SourceSchema(Schema):
    source_blob = fields.Nested(SourceBlobSchema, required=True)


class SourceBlobInputSchema(InputSchema):
    """`source_blob` of POST /apps/{app}/builds and POST /app-setups. Whether Berth may fetch the
    URL is SourceFetcher.check's to say (it knows the caller and the operator's hosts)."""

    url = fields.String(required=True, validate=[validate.Length(min=1, max=4096),
                                                 validate.URL(schemes={"http", "https"}, require_tld=False)])
    checksum = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        CHECKSUM, error="must be SHA256: followed by 64 hexadecimal digits"))
    version = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1024))
    version_description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1024))
