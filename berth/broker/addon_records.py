"""Plain records of what a provision request read and wrote, shaped like the models where the
answer's schema reads them (`AddOnSchema`, `declared_var_names`): the request side runs Core
statements, and answering from these costs no ORM load."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from berth.db import json_value


@dataclass(frozen=True)
class AppRef:
    id: str
    name: str


@dataclass(frozen=True)
class ServiceFacts:
    id: str
    name: str
    human_name: str
    state: str
    regions: list[str]
    requires: list[str]
    config_vars_prefix: str
    config_vars: list[str]


@dataclass(frozen=True)
class PlanFacts:
    id: str
    name: str
    service_name: str
    state: str
    cents: int
    unit: str
    contract: bool
    metered: bool

    @property
    def full_name(self) -> str:
        return f"{self.service_name}:{self.name}"


@dataclass(frozen=True)
class AttachmentFacts:
    id: str
    app_id: str
    name: str


@dataclass(frozen=True)
class AttachTarget:
    """The app an attachment goes into, as far as choosing its name and checking its vars needs:
    the attachment names taken there and each config var's owner (None: set by the user)."""

    app: AppRef
    taken_names: frozenset[str]
    var_owners: dict[str, str | None]

    @classmethod
    def from_raw(cls, app: AppRef, taken: Any, owners: Any) -> "AttachTarget":
        """From the JSON aggregates a statement read (NULL on PostgreSQL over no rows)."""
        return cls(app, frozenset(json_value(taken) or ()), dict(json_value(owners) or {}))


@dataclass
class NewAddOn:
    """An add-on as the request that created it knows it; a look after the wait refreshes the
    columns a worker may have changed."""

    id: str
    name: str
    app: AppRef
    service: ServiceFacts
    plan: PlanFacts
    state: str
    created_at: datetime
    updated_at: datetime
    attachments: list[AttachmentFacts] = field(default_factory=list)
    config: str = "{}"  # the provider's config as JSON (decrypted)
    provider_id: str | None = None
    provision_message: str | None = None
    failure_message: str | None = None
    operation_id: str | None = None  # the provision the request queued

    @property
    def app_id(self) -> str:
        return self.app.id
