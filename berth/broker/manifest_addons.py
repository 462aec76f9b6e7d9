"""app.json's add-ons, for the platform (through hooks.MANIFEST_ADDONS, ADDON_STATES, REMOVE_ADDONS):
recorded by the same provisioning path as POST /apps/{app}/addons, so the worker provisions them."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.accounts import Account
from berth.broker import provision_context, provisioning
from berth.broker.models import AddOn
from berth.config import Settings
from berth.errors import BerthError
from berth.platform.app_manifest import AddonRequest, ManifestInvalid
from berth.platform.models import App


def _already_met(session: Session, user: Account, app: App, request: AddonRequest) -> bool:
    """The app has this add-on already: an attachment of the requested name, or (none named) a live
    add-on of the service. A first deploy keeps what the user provisioned before it."""
    context = provision_context.read(session, user.id, app.id, request.plan, None)
    if context is None or context.service is None:
        return False
    if request.attachment_name:
        return request.attachment_name in context.target.taken_names
    return context.service_on_app


def record_manifest_addons(session: Session, settings: Settings, app: App, user: Account,
                           requests: list[AddonRequest]) -> list[str]:
    """Each request the app does not meet yet becomes a provisioning add-on with its operation; every
    refusal is collected (ManifestInvalid), and then nothing is recorded."""
    made, errors = [], []
    savepoint = session.begin_nested()
    for index, request in enumerate(requests):
        if _already_met(session, user, app, request):
            continue
        try:
            with session.begin_nested():
                addon = provisioning.create_addon(session, settings, user.id, app.id, request.plan,
                                                  attachment_name=request.attachment_name,
                                                  config=request.options)
        except BerthError as exc:
            errors.append(f"addons.{index}: {request.plan}: {exc.message}")
            continue
        made.append(addon.id)
    if errors:
        savepoint.rollback()
        raise ManifestInvalid(errors)
    savepoint.commit()
    return made


def addon_states(session: Session, addon_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    rows = session.execute(select(AddOn.id, AddOn.state, AddOn.failure_message, AddOn.name)
                           .where(AddOn.id.in_(addon_ids))).all()
    return {row.id: (row.state, row.failure_message or row.name) for row in rows}


def remove_addons(session: Session, addon_ids: list[str], user: Any) -> None:
    for addon in session.scalars(select(AddOn).where(AddOn.id.in_(addon_ids))).all():
        provisioning.destroy_addon(session, user, addon)
