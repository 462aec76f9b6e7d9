"""/addon-attachments, /apps/{app}/addon-attachments, /addons/{addon}/addon-attachments."""
from __future__ import annotations

from typing import Any

from flask import request

from berth.broker import attachments, finders
from berth.broker.api import blueprint
from berth.broker.models import AddOnState, Attachment
from berth.broker.schemas import AttachmentCreateSchema, AttachmentSchema
from berth.errors import Conflict
from berth.httpapi.body import load
from berth.httpapi.context import current_account, current_account_id, db_session
from berth.httpapi.openapi import describe
from berth.httpapi.pagination import paginate
from berth.platform import apps

Reply = Any
RANGE_FIELDS = {"id": Attachment.id, "name": Attachment.name, "created_at": Attachment.created_at}


def _list(query: Any) -> Reply:
    page = paginate(db_session(), query, RANGE_FIELDS, request.headers.get("Range"),
                    tie_breaker=Attachment.id)
    return page.respond(AttachmentSchema(many=True).dump(page.rows))


@blueprint.post("/addon-attachments")
@describe(summary="Attach an add-on to an app (sharing it)", request=AttachmentCreateSchema,
          response=AttachmentSchema, status=201)
def create_attachment() -> Reply:
    params = load(AttachmentCreateSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, params["app"])
    addon = finders.get_addon(session, account.id, params["addon"])
    finders.require_owner_app_access(session, account.id, addon)
    if addon.state not in (AddOnState.PROVISIONING, AddOnState.PROVISIONED):
        raise Conflict(f"{addon.name} is {addon.state}; only live add-ons can be attached.")
    finders.caller_may_attach(app, addon)
    attachment = attachments.create_attachment(session, app, addon, name=params["name"],
                                               confirm=params["confirm"], user=account,
                                               namespace=params["namespace"])
    return AttachmentSchema().dump(attachment), 201


@blueprint.get("/addon-attachments")
@describe(summary="Attachments on apps the caller can see", response=AttachmentSchema, many=True)
def list_attachments() -> Reply:
    return _list(attachments.attachments_query(current_account_id()))


@blueprint.get("/apps/<app_ref>/addon-attachments")
@describe(summary="An app's attachments", response=AttachmentSchema, many=True)
def list_app_attachments(app_ref: str) -> Reply:
    app = apps.get_app(db_session(), current_account_id(), app_ref)
    return _list(attachments.attachments_query(current_account_id()).where(Attachment.app_id == app.id))


@blueprint.get("/addons/<addon_ref>/addon-attachments")
@describe(summary="Where an add-on is attached", response=AttachmentSchema, many=True)
def list_addon_attachments(addon_ref: str) -> Reply:
    addon = finders.get_addon(db_session(), current_account_id(), addon_ref)
    return _list(attachments.attachments_query(current_account_id()).where(Attachment.addon_id == addon.id))


@blueprint.get("/apps/<app_ref>/addon-attachments/<ref>")
@describe(summary="One attachment of an app, by id or name", response=AttachmentSchema)
def show_app_attachment(app_ref: str, ref: str) -> Reply:
    session, caller = db_session(), current_account_id()
    app = apps.get_app(session, caller, app_ref)
    return AttachmentSchema().dump(attachments.get_attachment(session, caller, ref, app=app))


@blueprint.get("/addon-attachments/<ref>")
@describe(summary="One attachment by id", response=AttachmentSchema)
def show_attachment(ref: str) -> Reply:
    return AttachmentSchema().dump(attachments.get_attachment(db_session(), current_account_id(), ref))


@blueprint.delete("/addon-attachments/<ref>")
@describe(summary="Detach: removes its config vars from the app (a release)", response=AttachmentSchema)
def delete_attachment(ref: str) -> Reply:
    session, account = db_session(), current_account()
    attachment = attachments.get_attachment(session, account.id, ref)
    on_owner = [a for a in attachment.addon.attachments if a.app_id == attachment.addon.app_id]
    if on_owner == [attachment]:
        raise Conflict("This is the add-on's last attachment to the app that owns it; destroy the "
                       "add-on instead.")
    body = AttachmentSchema().dump(attachment)
    attachments.detach(session, attachment, account)
    return body
