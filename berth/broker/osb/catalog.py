"""The catalogue as OSB offerings: service id = add-on service UUID, plan id = plan UUID, bare
slugs for names (deployed clients want `essential-0`, not `postgresql:essential-0`)."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from berth import crypto
from berth.broker.models import AddonService, Plan
from berth.broker.osb.schemas import BINDING_PARAMETERS_SCHEMA, PARAMETERS_SCHEMA, ServiceSchema, dump
from berth.config import Settings

OFFERED_PLAN_STATES = ("public", "beta")
# Platforms stop polling after this; Berth's worker answers long before (its provider timeouts).
MAXIMUM_POLLING_SECONDS = 3600


def offered_services(session: Session) -> list[AddonService]:
    """Services open to new add-ons, with their offered plans (a service with none is left out)."""
    services = session.scalars(select(AddonService).where(AddonService.state != "shutdown")
                               .options(selectinload(AddonService.plans)).order_by(AddonService.name)).all()
    return [service for service in services if offered_plans(service)]


def offered_plans(service: AddonService) -> list[Plan]:
    return [plan for plan in service.plans if plan.state in OFFERED_PLAN_STATES]


def maintenance_version(service: AddonService) -> str:
    """SemVer of the service's catalogue entry: its manifest revision (bumped on every change)."""
    return f"{service.manifest_base or 1}.0.0"


def maintenance_info(service: AddonService) -> dict[str, str]:
    return {"version": maintenance_version(service),
            "description": f"{service.human_name}, catalogue revision {service.manifest_base or 1}"}


def sync_capable(settings: Settings, service_name: str, plan_name: str) -> bool:
    """Plans whose operations finish within a request (a shared server's database): served without
    `accepts_incomplete`. Every other plan is asynchronous only."""
    return f"{service_name}:{plan_name}" in settings.osb_sync_plans


def _plan(service: AddonService, plan: Plan) -> dict[str, Any]:
    bullets = [f"{feature.get('name', '')}: {feature.get('value', '')}".strip(": ")
               for feature in plan.features if isinstance(feature, dict)]
    metadata: dict[str, Any] = {
        "displayName": plan.human_name,
        "costs": [{"amount": {"usd": plan.cents / 100}, "unit": "MONTHLY" if plan.unit == "month" else plan.unit.upper()}],
    }
    if bullets:
        metadata["bullets"] = bullets
    return {
        "id": plan.id, "name": plan.name, "description": plan.description or plan.human_name,
        "metadata": metadata, "free": plan.cents == 0, "bindable": True,
        "schemas": {"service_instance": {"create": {"parameters": PARAMETERS_SCHEMA},
                                         "update": {"parameters": PARAMETERS_SCHEMA}},
                    "service_binding": {"create": {"parameters": BINDING_PARAMETERS_SCHEMA}}},
        "plan_updateable": True, "maintenance_info": maintenance_info(service), "binding_rotatable": False,
    }


def dashboard_client(settings: Settings, service: AddonService) -> dict[str, str] | None:
    """For a service with a dashboard (SSO): the client Cloud Foundry registers for it. Its secret
    is derived from Berth's keys (stable across restarts, never the partner's own secret)."""
    if not service.sso_url:
        return None
    key = crypto.keyring().derived_keys("osb-dashboard-client")[0]
    return {"id": f"berth-{service.name}", "secret": hmac.new(key, service.id.encode(), hashlib.sha256).hexdigest(),
            "redirect_uri": f"{settings.api_url}/dashboard"}


def _service(settings: Settings, service: AddonService) -> dict[str, Any]:
    tags = sorted({service.name, *(category for category in service.categories if isinstance(category, str))})
    requires = ["syslog_drain"] if "syslog_drain" in service.requires else None
    return {
        "name": service.name, "id": service.id,
        "description": (service.description or service.human_name)[:255],
        "tags": tags, "requires": requires, "bindable": True, "instances_retrievable": True,
        "bindings_retrievable": True, "allow_context_updates": True, "plan_updateable": True,
        "metadata": {"displayName": service.human_name, "longDescription": service.description or service.human_name,
                     "providerDisplayName": "Berth" if service.owner_id is None else service.human_name},
        "dashboard_client": dashboard_client(settings, service),
        "plans": [_plan(service, plan) for plan in offered_plans(service)],
    }


def catalog(session: Session, settings: Settings) -> dict[str, Any]:
    return {"services": [dump(ServiceSchema, _service(settings, service)) for service in offered_services(session)]}
