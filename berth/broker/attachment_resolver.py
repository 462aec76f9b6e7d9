"""Finding add-on attachments from what a user typed (`POST /actions/addon-attachments/resolve`):
the Heroku CLI's pg and redis commands name a database this way (`DATABASE`, `HEROKU_POSTGRESQL_RED`,
an add-on's name, `app::name`, an attachment id) and pick one from the answer themselves."""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN

from berth.broker.attachments import attachments_query
from berth.broker.models import AddOn, AddOnState, AddonService, Attachment
from berth.errors import NotFound
from berth.platform import apps


def resolve_attachments(session: Session, caller_id: str, ref: str, app_ref: str | None = None,
                        service: str | None = None) -> list[Attachment]:
    """Every attachment the caller can see that `ref` names: its id; or, on `app_ref` (or the app
    before `::`), its name or its add-on's name; without an app, its add-on's name or id.
    Ambiguity is the caller's to settle (the CLI keeps the ones without a namespace)."""
    if "::" in ref:
        app_ref, ref = ref.split("::", 1)
    query = attachments_query(caller_id).join(AddOn, AddOn.id == Attachment.addon_id).where(
        AddOn.state.in_((AddOnState.PROVISIONING, AddOnState.PROVISIONED)))
    if UUID_PATTERN.match(ref):
        query = query.where(or_(Attachment.id == ref.lower(), AddOn.id == ref.lower()))
    else:
        query = query.where(or_(Attachment.name == ref, AddOn.name == ref) if app_ref else AddOn.name == ref)
    if app_ref:
        query = query.where(Attachment.app_id == apps.get_app(session, caller_id, app_ref).id)
    if service:
        query = query.where(AddOn.service_id.in_(select(AddonService.id).where(AddonService.name == service)))
    found = list(session.scalars(query.order_by(Attachment.created_at, Attachment.id)))
    if not found:
        raise NotFound(f"Couldn't find that add-on attachment: {ref}.", resource="add_on attachment")
    return found
