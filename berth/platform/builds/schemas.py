"""Builds in and out (Platform API build)."""
from __future__ import annotations

from typing import Any, Callable

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from berth.httpapi.body import InputSchema
from berth.httpapi.fields import Timestamp
from berth.platform.apps import stable_id
from berth.platform.buildpack_installations import MAX_BUILDPACKS, display_name
from berth.platform.builds.records import status_of
from berth.platform.sources.schemas import SourceBlobInputSchema
from berth.platform.stacks import canonical as canonical_stack


class BuildpackInputSchema(InputSchema):
    """`{"url": …}` or `{"name": …}` (heroku3 and the CLI send url)."""

    url = fields.String(load_default=None, validate=validate.Length(min=1, max=1000))
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=1000))

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("url") and not data.get("name"):
            raise ValidationError("each buildpack needs a url or a name")


class BuildCreateSchema(InputSchema):
    source_blob = fields.Nested(SourceBlobInputSchema, required=True)
    buildpacks = fields.List(fields.Nested(BuildpackInputSchema), load_default=list, allow_none=True,
                             validate=validate.Length(max=MAX_BUILDPACKS))


class BuildSchema(Schema):
    def __init__(self, *, output_stream_url: Callable[[Any], str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_stream_url = output_stream_url

    id = fields.String()
    app = fields.Function(lambda build: {"id": build.app_id})
    status = fields.Function(status_of)
    output_stream_url = fields.Method("_output_stream_url")
    source_blob = fields.Function(lambda build: {
        "url": build.source_url, "checksum": build.source_checksum, "version": build.source_version,
        "version_description": None})
    buildpacks = fields.Function(lambda build: [{"url": url, "name": display_name(url)} for url in build.buildpacks])
    release = fields.Function(lambda build: {"id": build.release_id} if build.release_id else None)
    slug = fields.Function(lambda build: {"id": build.slug_id} if build.slug_id else None)
    stack = fields.Function(lambda build: canonical_stack(build.stack))
    generation = fields.Function(lambda build: {"id": stable_id("generation", "cedar"), "name": "cedar"})
    user = fields.Function(lambda build: {"id": build.user_id, "email": build.user.email})
    failure_message = fields.String(attribute="message", allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    started_at = fields.Function(lambda build: Timestamp()._serialize(build.created_at, "created_at", build))

    def _output_stream_url(self, build: Any) -> str:
        assert self.output_stream_url is not None, "BuildSchema needs output_stream_url to dump"
        return self.output_stream_url(build)


class BuildCacheSchema(Schema):
    """What DELETE build-cache answers (Heroku answers 202 with an empty body; a small object here)."""

    app = fields.Dict()
    cleared = fields.Boolean()
