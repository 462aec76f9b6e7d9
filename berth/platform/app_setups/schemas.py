"""App setups in and out (Platform API app-setup)."""
from __future__ import annotations

from typing import Any, Callable

from marshmallow import Schema, fields, validate

from berth.httpapi.body import InputSchema
from berth.httpapi.fields import Reference, ScalarString, Timestamp
from berth.platform.app_manifest import ENV_NAME
from berth.platform.app_setups.records import status_of
from berth.platform.buildpack_installations import MAX_BUILDPACKS
from berth.platform.builds.schemas import BuildpackInputSchema
from berth.platform.sources.schemas import SourceBlobInputSchema


class SetupAppInputSchema(InputSchema):
    # What Heroku's schema offers for teams and spaces; this Berth has neither.
    TOLERATED = frozenset({"locked", "organization", "personal", "space"})
    name = fields.String(load_default=None, allow_none=True)
    region = Reference(load_default=None, allow_none=True)
    stack = Reference(load_default=None, allow_none=True)


class OverridesInputSchema(InputSchema):
    env = fields.Dict(keys=fields.String(validate=validate.Regexp(
        ENV_NAME, error="{input} is not a config var name app.json allows (^[A-Z][A-Z0-9_]*$)")),
        values=ScalarString(), load_default=dict)
    buildpacks = fields.List(fields.Nested(BuildpackInputSchema), load_default=list,
                             validate=validate.Length(max=MAX_BUILDPACKS))


class AppSetupCreateSchema(InputSchema):
    source_blob = fields.Nested(SourceBlobInputSchema, required=True)
    app = fields.Nested(SetupAppInputSchema, load_default=dict)
    overrides = fields.Nested(OverridesInputSchema, load_default=dict)


class AppSetupSchema(Schema):
    def __init__(self, *, output_stream_url: Callable[[str], str] | None = None,
                 web_url: Callable[[str], str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # the callables are needed to dump, not to describe (OpenAPI)
        self.output_stream_url, self.web_url = output_stream_url, web_url

    id = fields.String()
    status = fields.Function(status_of)
    failure_message = fields.String(attribute="message", allow_none=True)
    manifest_errors = fields.List(fields.String())
    app = fields.Function(lambda setup: {"id": setup.app_id, "name": setup.app_name})
    build = fields.Method("_build")
    postdeploy = fields.Method("_postdeploy")
    resolved_success_url = fields.Method("_success_url")
    created_at = Timestamp()
    updated_at = Timestamp()

    def _build(self, setup: Any) -> dict[str, Any] | None:
        if setup.build_id is None:
            return None
        assert self.output_stream_url is not None, "AppSetupSchema needs output_stream_url to dump"
        return {"id": setup.build_id, "status": setup.build_status or "pending",
                "output_stream_url": self.output_stream_url(setup.build_id)}

    @staticmethod
    def _postdeploy(setup: Any) -> dict[str, Any] | None:
        if setup.postdeploy_exit_code is None:
            return None
        return {"output": setup.postdeploy_output or "", "exit_code": setup.postdeploy_exit_code}

    def _success_url(self, setup: Any) -> str | None:
        """Where Heroku sends the user once the setup succeeded: app.json's success_url, a path on the app."""
        if status_of(setup) != "succeeded":
            return None
        assert self.web_url is not None, "AppSetupSchema needs web_url to dump"
        url = setup.success_url or "/"
        return url if not url.startswith("/") else self.web_url(setup.app_name).rstrip("/") + url
