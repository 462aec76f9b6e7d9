"""Finding add-ons: by uuid, name or attachment name, as the caller may see them."""
from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN
from berth.broker.models import AddOn, AddOnState, Attachment
from berth.errors import Forbidden, NotFound
from berth.platform import apps
from berth.platform.models import App

ADDON_NOT_FOUND = "Couldn't find that add-on."


def visible_addons_query(caller_id: str):  # type: ignore[no-untyped-def]
    """Add-ons whose owning app, or an app they are attached to, the caller can see."""
    attached = (select(Attachment.addon_id).join(App, App.id == Attachment.app_id)
                .where(apps.visible_to(caller_id)))
    owned = select(App.id).where(apps.visible_to(caller_id))
    return select(AddOn).where(or_(AddOn.app_id.in_(owned), AddOn.id.in_(attached)))


def listed_addons_query(caller_id: str):  # type: ignore[no-untyped-def]
    return visible_addons_query(caller_id).where(AddOn.state.in_((AddOnState.PROVISIONING, AddOnState.PROVISIONED,
                                                                  AddOnState.DEPROVISIONING)))


def addon_reference(ref: str) -> ColumnElement[bool]:
    """SQL condition: the add-on with the UUID `ref`, or named `ref`."""
    return AddOn.id == ref.lower() if UUID_PATTERN.match(ref) else AddOn.name == ref


def get_addon(session: Session, caller_id: str, ref: str) -> AddOn:
    """By uuid or global name. Destroyed add-ons are gone (404, which `--wait` waits for);
    failed ones stay readable, so whoever waited can see why."""
    addon = session.scalar(visible_addons_query(caller_id).where(addon_reference(ref)))
    if addon is None or addon.state == AddOnState.DEPROVISIONED:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    return addon


def get_app_addon(session: Session, caller_id: str, app: App, ref: str) -> AddOn:
    """An add-on owned by or attached to `app` (which the caller can see: found with get_app), by
    uuid, name or attachment name. Being on a visible app makes it visible: no wider search."""
    attachment = session.scalar(select(Attachment).where(Attachment.app_id == app.id,
                                                         Attachment.name == ref))
    if attachment is not None:
        addon: AddOn | None = attachment.addon
    else:
        on_app = or_(AddOn.app_id == app.id,
                     AddOn.id.in_(select(Attachment.addon_id).where(Attachment.app_id == app.id)))
        addon = session.scalar(select(AddOn).where(addon_reference(ref), on_app))
    if addon is None or addon.state == AddOnState.DEPROVISIONED:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    return addon


def require_owner_app_access(session: Session, caller_id: str, addon: AddOn, *,
                             known: App | None = None) -> App:
    """Changing or destroying an add-on is for those who can see the app that owns it (`known`:
    an app the caller was already found to see, saving the look-up when it is the owner)."""
    if addon.app_id is None:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    if known is not None and known.id == addon.app_id:
        return known
    return apps.get_app(session, caller_id, addon.app_id)


def caller_may_attach(app: App, addon: AddOn) -> None:
    if addon.app_id != app.id and "attachable" not in addon.service.requires:
        raise Forbidden(f"{addon.service.name} add-ons cannot be shared with other apps.")
