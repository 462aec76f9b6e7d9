"""The `Provider` protocol: what a first-party add-on implements to be served as a partner.

`partner_api.server` turns a Provider into the partner API of `specs/partner-api.md` §2 (Basic
auth, v3 provision body, idempotency on the add-on's uuid, the answer shapes), so a first-party
add-on is reached over HTTP by the same client that calls third parties, and the conformance
suite runs against it unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ProvisionRequest:
    uuid: str                    # the add-on's id at Berth: the idempotency key
    plan: str                    # the plan's short name (`essential-0`), not `service:plan`
    region: str
    name: str = ""
    options: dict[str, str] = field(default_factory=dict)
    callback_url: str | None = None  # `<Berth API>/addons/<uuid>`: where an asynchronous provision reports
    log_input_url: str | None = None
    log_drain_token: str | None = None
    oauth_grant: dict[str, str] | None = field(default=None, repr=False)  # single-use code (a secret)


@dataclass(frozen=True)
class Provisioned:
    """`accepted`: the resource is recorded but not ready; the server answers 202 and the
    provider finishes through Berth's partner endpoints (grant exchange, config PATCH,
    actions/provision: `specs/partner-api.md` §3.2), so a slow backend never races the
    broker's call timeout. `config` is then empty."""

    id: str                                   # the provider's resource id (often the uuid itself)
    config: dict[str, str]                    # full names, with the manifest's prefix
    message: str | None = None
    log_drain_url: str | None = None
    accepted: bool = False


@dataclass(frozen=True)
class ActionResult:
    """What an action answers: a message for the user, the resource's new config when the action
    changed it (a credential rotation: Berth makes a release on every attached app), and any JSON
    result for the caller (a backup list, a topic's settings)."""

    message: str | None = None
    config: dict[str, str] | None = None
    result: Any = None


class ProviderError(Exception):
    """A call the provider cannot serve. 422 = refused for good (bad plan or option, a limit):
    the broker shows `message` to the user; 503 = not now (a backend is down or starting): the
    broker treats it as a failure and cleans up."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class Provider(Protocol):
    """One first-party add-on service. Every method is idempotent: the broker may repeat a call
    after a crash, and must then get the same answer and no second resource."""

    def manifest(self) -> dict[str, Any]:
        """The partner manifest (`specs/partner-api.md` §1 plus Berth's `plans`, `description`,
        `categories`), without `api.password`, `base_url` or `sso_url`: the server fills those."""
        ...

    def provision(self, request: ProvisionRequest) -> Provisioned:
        """Create the resource (or return the one made for this uuid before); or, when that would
        take long, record it and answer `Provisioned(accepted=True)` (needs `callback_url` and
        `oauth_grant`)."""
        ...

    def change_plan(self, uuid: str, plan: str) -> dict[str, str] | None:
        """Move the resource to `plan`; return its new config if that changed, else None.
        Unknown uuid: raise ProviderError(..., 404)."""
        ...

    def deprovision(self, uuid: str) -> bool:
        """Remove the resource and everything it holds; its credentials stop working at once.
        False when there is nothing (left) to remove: the server answers 410."""
        ...


class ProviderWithActions(Provider, Protocol):
    """A provider with operations beyond the partner API (Berth's extension: `POST
    <base>/<uuid>/actions/<name>`), reached through `POST /apps/{app}/addons/{addon}/actions/{name}`."""

    def action(self, uuid: str, name: str, params: dict[str, Any]) -> ActionResult:
        """Run action `name`; an unknown name: ProviderError(..., 404); bad params: 422."""
        ...


class ProviderWithGrants(Provider, Protocol):
    """A provider that gives each grant (an OSB binding) credentials of its own with the resource's
    rights (Berth's extension, declared by `grants` in the manifest's `requires`). Both calls are
    idempotent on (uuid, grant_id); deprovisioning removes every grant's credentials."""

    def grant(self, uuid: str, grant_id: str) -> dict[str, str]:
        """The grant's config (the resource's config var names, the grant's own user and password),
        made on the first call. Unknown or deprovisioned uuid: ProviderError(..., 404)."""
        ...

    def revoke(self, uuid: str, grant_id: str) -> bool:
        """The grant's credentials stop working and its sessions end; what it made stays with the
        resource. False when there is no such grant (left): the server answers 410."""
        ...
