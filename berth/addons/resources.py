"""Service functions over `ProviderResource`: the providers' own bookkeeping."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.addons.models import ACTIVE, CREATING, DELETED, DELETING, ProviderResource
from berth.db import Database


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


def snapshot(database: Database, service: str, uuid: str) -> dict[str, Any] | None:
    """A resource's state, plan and decrypted details (secrets included: operators and tests
    only), or None when `service` has no such resource."""
    with database.session(write=False) as session:
        resource = find(session, service, uuid)
        if resource is None:
            return None
        return {"state": resource.state, "plan": resource.plan, **details(resource)}


def live(session: Session, service: str) -> list[ProviderResource]:
    """Resources that exist or may exist on a backend (not yet known to be gone)."""
    return list(session.scalars(select(ProviderResource).where(
        ProviderResource.service == service, ProviderResource.state.in_((CREATING, ACTIVE, DELETING)))))


def least_loaded(session: Session, service: str, locations: list[str]) -> str:
    """Of `locations`, the one holding the fewest live resources of `service` (first on a tie)."""
    load = Counter(resource.location for resource in live(session, service))
    return min(locations, key=lambda location: (load[location], locations.index(location)))


__all__ = ["ACTIVE", "CREATING", "DELETED", "DELETING", "ProviderResource", "details", "find",
           "least_loaded", "live", "record", "set_details", "snapshot"]
