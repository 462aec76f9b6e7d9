"""Partners' secrets, rotated from the partner portal: a fresh API password or SSO salt.

A rotated secret is returned once, for the partner to configure their service with; Berth keeps
only the stored (encrypted) value. Rotating bumps the manifest's `$base`, like a push, so a
manifest pulled before the rotation is refused as stale instead of restoring the old secret.
"""
from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from berth.broker import catalogue
from berth.broker.models import AddOn, AddOnState, AddonService
from berth.errors import NotFound

LIVE_STATES = (AddOnState.PROVISIONING, AddOnState.PROVISIONED, AddOnState.DEPROVISIONING)  # not deprovisioned, not failed
SECRET_BYTES = 32


def owned_service(session: Session, owner_id: str, ref: str) -> AddonService:
    """A service `owner_id` owns; anyone else's looks exactly like a missing one."""
    service = catalogue.find_service(session, ref)
    if service is None or service.owner_id != owner_id:
        raise NotFound(catalogue.SERVICE_NOT_FOUND, resource="addon_service")
    return service


def owned_services(session: Session, owner_id: str) -> list[AddonService]:
    return list(session.scalars(catalogue.services_query().where(AddonService.owner_id == owner_id)
                                .order_by(AddonService.name)))


def live_installs(session: Session, service_ids: list[str]) -> dict[str, int]:
    """Live add-ons per service id (those still provisioned or on their way in or out)."""
    if not service_ids:
        return {}
    rows = session.execute(select(AddOn.service_id, func.count()).where(
        AddOn.service_id.in_(service_ids), AddOn.state.in_(LIVE_STATES)).group_by(AddOn.service_id))
    return {service_id: count for service_id, count in rows}


def live_installs_per_plan(session: Session, service_id: str) -> dict[str, int]:
    rows = session.execute(select(AddOn.plan_id, func.count()).where(
        AddOn.service_id == service_id, AddOn.state.in_(LIVE_STATES)).group_by(AddOn.plan_id))
    return {plan_id: count for plan_id, count in rows}


def _new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def rotate_password(session: Session, service: AddonService) -> str:
    """A new Basic-auth password for Berth's calls to the partner; returned once."""
    service.password = _new_secret()
    service.manifest_base = (service.manifest_base or 0) + 1
    session.flush()
    return service.password


def rotate_sso_salt(session: Session, service: AddonService) -> str:
    """A new salt for SSO tokens; returned once."""
    service.sso_salt = _new_secret()
    service.manifest_base = (service.manifest_base or 0) + 1
    session.flush()
    return service.sso_salt
