"""What the data API answers, in the shapes the Heroku CLI reads."""
from __future__ import annotations

from marshmallow import Schema, fields


class InfoRowSchema(Schema):
    name = fields.String()
    values = fields.List(fields.String())


class DataAddOnSchema(Schema):
    """What both products answer: the add-on, its URL and the lines `pg:info`/`redis:info` print."""
    addon_id = fields.String()
    name = fields.String()
    plan = fields.String()
    resource_url = fields.String()
    info = fields.List(fields.Nested(InfoRowSchema))


class DatabaseInfoSchema(DataAddOnSchema):
    """`pg:info`: `resource_url` is matched against the app's config to name the vars."""


class DatabaseUserSchema(Schema):
    user = fields.String()
    password = fields.String()  # only in the answer for one named credential
    state = fields.String()


class CredentialSchema(Schema):
    uuid = fields.String()
    name = fields.String()
    state = fields.String()
    database = fields.String()
    host = fields.String()
    port = fields.Integer()
    credentials = fields.List(fields.Nested(DatabaseUserSchema))


class RedisDatabaseSchema(DataAddOnSchema):
    """`redis:info` prints `info`; `redis:cli` dials `resource_url`, over TLS if `prefer_native_tls`."""
    prefer_native_tls = fields.Boolean()
