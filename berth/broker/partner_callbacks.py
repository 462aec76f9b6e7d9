"""What partners do to their add-ons through the partner endpoints: config, completion."""
from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.broker import attachments, partner_auth
from berth.broker.finders import ADDON_NOT_FOUND, addon_reference
from berth.broker.models import AddOn, AddOnState, Attachment
from berth.broker.outcomes import fail_provision
from berth.errors import Conflict, Forbidden, InvalidParams, NotFound
from berth.platform.models import App


def partner_addon(session: Session, partner_addon_id: str, ref: str) -> AddOn:
    """The add-on a partner token reaches; any other is out of its scope (403)."""
    addon = session.scalar(select(AddOn).where(addon_reference(ref)))
    if addon is None:
        raise NotFound(ADDON_NOT_FOUND, resource="add_on")
    if addon.id != partner_addon_id:
        raise Forbidden("This token is for another add-on.")
    return addon


def config_items(addon: AddOn) -> list[dict[str, str | None]]:
    return [{"name": name, "value": value}
            for name, value in sorted(attachments.addon_config(addon).items())]


def update_config_from_partner(session: Session, addon: AddOn,
                               items: list[dict[str, str | None]]) -> AddOn:
    """Merge the partner's values (null deletes). Provisioned: a release on every attached
    app; still provisioning: staged until the partner says it is done."""
    declared = set(addon.service.config_vars)
    unknown = sorted(str(item["name"]) for item in items if item["name"] not in declared)
    if unknown:
        raise InvalidParams(f"{', '.join(unknown)} not declared in the manifest's config_vars.")
    merged = attachments.addon_config(addon)
    for item in items:
        if item["value"] is None:
            merged.pop(str(item["name"]), None)
        else:
            merged[str(item["name"])] = str(item["value"])
    addon.config = json.dumps(merged, sort_keys=True)
    if addon.state == AddOnState.PROVISIONED:
        attachments.release_config_everywhere(session, addon, None,
                                              f"Update {addon.service.config_vars_prefix} by {addon.service.name}")
    session.flush()
    return addon


def complete_provision(session: Session, addon: AddOn) -> AddOn:
    if addon.state == AddOnState.PROVISIONING:
        addon.state, addon.deadline_at = AddOnState.PROVISIONED, None
        for attachment in list(addon.attachments):
            attachments.go_live(session, attachment, None)
        session.flush()
    elif addon.state != AddOnState.PROVISIONED:
        raise Conflict(f"{addon.name} is {addon.state}; it can no longer be provisioned.")
    return addon


def complete_deprovision(session: Session, addon: AddOn) -> AddOn:
    """The partner is done with (or gives up on) the resource."""
    if addon.state == AddOnState.PROVISIONING:
        fail_provision(session, addon, "The provider could not create the add-on.", mitigate=False)
    elif addon.state in (AddOnState.PROVISIONED, AddOnState.DEPROVISIONING):
        for attachment in list(addon.attachments):
            attachments.detach(session, attachment, None)
        addon.state = AddOnState.DEPROVISIONED
        partner_auth.revoke(session, addon)
    session.flush()
    return addon


def partner_may_see_app(session: Session, partner_addon_id: str, app: App) -> bool:
    return session.scalar(select(Attachment.id).where(Attachment.addon_id == partner_addon_id,
                                                      Attachment.app_id == app.id)) is not None
