"""/actions/addon-attachments/resolve: how the Heroku CLI's pg and redis commands find a database."""
from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from berth.broker.api import blueprint
from berth.broker.attachment_resolver import resolve_attachments
from berth.broker.schemas import AttachmentSchema
from berth.httpapi.body import InputSchema, load
from berth.httpapi.context import current_account_id, db_session
from berth.httpapi.openapi import describe


class AttachmentResolveSchema(InputSchema):
    addon_attachment = fields.String(required=True, validate=validate.Length(min=1, max=300))
    app = fields.String(allow_none=True, load_default=None)
    addon_service = fields.String(allow_none=True, load_default=None)


@blueprint.post("/actions/addon-attachments/resolve")
@describe(summary="Find attachments by id, name, add-on name or app::name", request=AttachmentResolveSchema,
          response=AttachmentSchema, many=True)
def resolve_addon_attachments() -> Any:
    params = load(AttachmentResolveSchema())
    found = resolve_attachments(db_session(), current_account_id(), params["addon_attachment"],
                                params["app"], params["addon_service"])
    return AttachmentSchema(many=True).dump(found)
