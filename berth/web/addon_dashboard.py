"""What a first-party data add-on's page shows as its dashboard: the provider's own report.

Postgres, Redis and Kafka have no SSO dashboard; their add-on page is the dashboard. The data comes
from the providers through the path `POST /apps/{app}/addons/{addon}/actions/{name}` takes
(`actions.prepare` -> `call` -> `apply`), once per page view: `info`, plus the service's listing
(backups or topics) fetched at the same time. A provider that fails, refuses or is slow gives a
message in place of its section, never a broken page; its answer is validated like any input.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields
from sqlalchemy.orm import Session

from berth.broker import actions
from berth.broker.models import AddOn, AddOnState, AddonService
from berth.broker.partner_api.client import ProviderAnswer, ProviderClient
from berth.config import Settings
from berth.errors import BerthError
from berth.outbound import TargetPolicy

log = logging.getLogger(__name__)

# A page waits at most this long for a provider (or the operator's shorter provider timeout).
PAGE_READ_SECONDS = 5.0
CONNECT_SECONDS = 2.0


class _Answer(Schema):
    class Meta:
        unknown = EXCLUDE  # a newer provider may report more


class PostgresInfo(_Answer):
    plan = fields.String(required=True)
    status = fields.String(required=True)
    storage_used_bytes = fields.Integer(required=True)
    storage_limit_bytes = fields.Integer(required=True)
    connections = fields.Integer(required=True)
    backups = fields.Integer(load_default=0)


class RedisInfo(_Answer):
    plan = fields.String(required=True)
    maxmemory_bytes = fields.Integer(required=True)
    maxclients = fields.Integer(required=True)
    maxmemory_policy = fields.String(load_default="")
    persistent = fields.Boolean(load_default=False)
    used_memory_bytes = fields.Integer(load_default=None, allow_none=True)
    connected_clients = fields.Integer(load_default=None, allow_none=True)


class KafkaInfo(_Answer):
    plan = fields.String(required=True)
    prefix = fields.String(required=True)
    topics = fields.Integer(required=True)
    partitions_used = fields.Integer(required=True)
    max_partitions = fields.Integer(required=True)
    min_retention_ms = fields.Integer(load_default=None)
    max_retention_ms = fields.Integer(load_default=None)


class Backup(_Answer):
    id = fields.String(required=True)
    created_at = fields.String(required=True)
    size_bytes = fields.Integer(required=True)
    status = fields.String(load_default="")


class Topic(_Answer):
    name = fields.String(required=True)
    partitions = fields.Integer(required=True)
    retention_ms = fields.Integer(required=True)


@dataclass(frozen=True)
class Kind:
    info: type[Schema]
    listing: str | None = None          # the action that lists what the add-on holds
    listing_item: type[Schema] | None = None


KINDS = {"postgresql": Kind(PostgresInfo, "backups-list", Backup),
         "redis": Kind(RedisInfo),
         "kafka": Kind(KafkaInfo, "topics-list", Topic)}


@dataclass(frozen=True)
class Section:
    """One provider answer for a section of the page: its data, or why there is none."""
    data: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Dashboard:
    service: str
    info: Section
    listing: Section | None


def is_first_party(service: AddonService) -> bool:
    """Berth's own data services (registered by the operator, `owner_id` None, under their names)."""
    return service.owner_id is None and service.name in KINDS


def has_sso_dashboard(addon: AddOn) -> bool:
    """What `provisioning.sso_form` needs: otherwise an Open button would only answer 409."""
    return bool(addon.service.sso_url and addon.service.sso_salt)


def size_text(count: int) -> str:
    """Bytes as a person reads them (1024-based, as the plans count a GB)."""
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration_text(milliseconds: int) -> str:
    """A retention: whole days or hours where it is one, else minutes."""
    minutes = milliseconds // 60_000
    if minutes and minutes % 1440 == 0:
        return f"{minutes // 1440} days" if minutes != 1440 else "1 day"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60} hours" if minutes != 60 else "1 hour"
    return f"{minutes} minutes" if minutes != 1 else "1 minute"


_clients: dict[tuple[float, float, str, bool], ProviderClient] = {}


def provider_client(settings: Settings, *, quick: bool) -> ProviderClient:
    """One pooled client per timeout: `quick` for what a page reads, the operator's limit for changes.
    Like every client Berth uses, it completes first-party paths with this process's own URL and
    calls only the addresses the installation's policy allows."""
    read = min(settings.provider_timeout_seconds, PAGE_READ_SECONDS) if quick else settings.provider_timeout_seconds
    key = (min(CONNECT_SECONDS, read), read, settings.api_url, settings.allow_private_targets)
    if key not in _clients:
        _clients[key] = ProviderClient(connect_timeout=key[0], read_timeout=key[1],
                                       targets=TargetPolicy.from_settings(settings), own_url=settings.api_url)
    return _clients[key]


def _section(session: Session, call: actions.ActionCall, answer: ProviderAnswer, schema: Schema) -> Section:
    try:
        return Section(data=schema.load(actions.apply(session, call, answer)["result"]))
    except BerthError as error:
        log.warning("add-on %s: %s for its page failed: %s", call.addon_id, call.name, error.message)
        return Section(error=error.message)
    except ValidationError:
        log.warning("add-on %s: %s answered in an unexpected shape", call.addon_id, call.name)
        return Section(error=f"{call.endpoint.service} answered {call.name} in a shape this page "
                             "cannot read; try again later or use the API.")


def load(session: Session, settings: Settings, addon: AddOn) -> Dashboard | None:
    """The provider's report for a provisioned first-party add-on (None for any other add-on).
    The calls go out at once, so the page waits for the slower one, not their sum."""
    kind = KINDS.get(addon.service.name)
    if kind is None or not is_first_party(addon.service) or addon.state != AddOnState.PROVISIONED:
        return None
    client = provider_client(settings, quick=True)
    info_call = actions.prepare(addon, "info")
    if kind.listing is None or kind.listing_item is None:
        info = actions.call(client, info_call, {})
        return Dashboard(addon.service.name, _section(session, info_call, info, kind.info()), None)
    listing_call = actions.prepare(addon, kind.listing)
    with ThreadPoolExecutor(max_workers=1) as pool:
        listed = pool.submit(actions.call, client, listing_call, {})
        info = actions.call(client, info_call, {})
        listing = listed.result()
    return Dashboard(addon.service.name, _section(session, info_call, info, kind.info()),
                     _section(session, listing_call, listing, kind.listing_item(many=True)))
