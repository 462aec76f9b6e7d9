"""POST /sources: no parameters in, the source_blob's two URLs out."""
from __future__ import annotations

from marshmallow import Schema, fields

from berth.httpapi.body import InputSchema


class SourceCreateSchema(InputSchema):
    """POST /sources takes no parameters (the CLI sends no body)."""


class SourceBlobSchema(Schema):
    get_url = fields.String(required=True, metadata={"description": "download URL, valid for an hour"})
    put_url = fields.String(required=True, metadata={"description": "upload URL (PUT, no credentials), "
                                                                     "valid for an hour"})


class SourceSchema(Schema):
    source_blob = fields.Nested(SourceBlobSchema, required=True)
