"""Service functions over `ProviderResource`: the providers' own bookkeeping."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.addons.models import ACTIVE, CREATING, DELETED, DELETING, ProviderResource


def find(session: Session, service: str, uuid: str) -> ProviderResource | None:
    found = session.get(ProviderResource, uuid)
    return found if found is not None and found.service == service else None


def details(resource: ProviderResource) -> dict[str, Any]:
    return json.loads(resource.details or "{}")


def set_details(resource: ProviderResource, values: dict[str, Any]) -> None:
    resource.details = json.dumps(values, sort_keys=True)


def record(session: Session, service: str, uuid: str, plan: str, location: str,
           values: dict[str, Any]) -> ProviderResource:
    resource = ProviderResource(id=uuid, service=service, plan=plan, state=CREATING, location=location)
    set_details(resource, values)
    session.add(resource)
    session.flush()
    return resource


def live(session: Session, service: str) -> list[ProviderResource]:
    """Resources that exist or may exist on a backend (not yet known to be gone)."""
    return list(session.scalars(select(ProviderResource).where(
        ProviderResource.service == service, ProviderResource.state.in_((CREATING, ACTIVE, DELETING)))))


def least_loaded(session: Session, service: str, locations: list[str]) -> str:
    """Of `locations`, the one holding the fewest live resources of `service` (first on a tie)."""
    load = Counter(resource.location for resource in live(session, service))
    return min(locations, key=lambda location: (load[location], locations.index(location)))


__all__ = ["ACTIVE", "CREATING", "DELETED", "DELETING", "ProviderResource", "details", "find",
           "least_loaded", "live", "record", "set_details"]
