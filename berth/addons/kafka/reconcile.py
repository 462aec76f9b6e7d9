"""The reconciler: nothing may exist on the embedded broker that Berth's records do not keep
(DESIGN.md, "a reconciler proves it after a crash").

It lists what the broker holds in Berth's own naming (principals `User:kafka-<16 hex>`, topics and
consumer groups under a `<word>-<8 hex>.` prefix, client quotas of such principals), *then* reads
the records: a provision records its add-on before it makes anything, so whatever the listing
shows without a `creating` or `active` record is a leftover (a crash between steps, a provision
that outlived its caller) and is removed. The backends process runs it every minute.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from confluent_kafka import KafkaError
from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from berth.addons import resources
from berth.addons.kafka import broker
from berth.addons.kafka.provider import (
    EMBEDDED,
    SERVICE,
    KafkaProvider,
    QuotaError,
    _acl_filter,
    alter_user_quotas,
    describe_all_user_quotas,
)

log = logging.getLogger(__name__)

TENANT_PRINCIPAL = re.compile(r"^User:kafka-[0-9a-f]{16}\Z")
TENANT_PREFIX = re.compile(r"^[a-z]+-[0-9a-f]{8}\.")
EVERY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)


@dataclass
class Leftovers:
    principals: list[str] = field(default_factory=list)   # their ACLs were deleted
    quotas: list[str] = field(default_factory=list)       # principal names whose quotas were removed
    topics: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.principals or self.quotas or self.topics or self.groups)


def _prefix(name: str) -> str | None:
    found = TENANT_PREFIX.match(name)
    return found.group(0) if found else None


def reconcile(provider: KafkaProvider) -> Leftovers:
    """Remove from the embedded broker what no live record owns; returns what was removed
    (nothing when the broker is not running or an external cluster is configured)."""
    settings = provider.settings
    found = broker.endpoints(settings)
    if settings.kafka_bootstrap or found is None or not broker.ready(settings):
        return Leftovers()
    cluster = {"admin_bootstrap": found.admin_bootstrap, "location": EMBEDDED}
    admin = provider._admin(cluster, "reconciler")
    tls = broker.admin_ssl_context(settings)
    # What the broker holds: read first (see the module's note).
    acls = provider._wait(admin.describe_acls(EVERY_ACL), "reading ACLs")[0]
    principals = {binding.principal for binding in acls if TENANT_PRINCIPAL.match(binding.principal)}
    topics = [name for name in provider._topic_names(admin) if _prefix(name)]
    listed = provider._wait(admin.list_consumer_groups(request_timeout=provider.timeout), "listing consumer groups")
    groups = [group.group_id for group in listed[0].valid if _prefix(group.group_id)] if listed else []
    quota_users = [user for user in describe_all_user_quotas(found.admin_bootstrap, provider.timeout, tls)
                   if TENANT_PRINCIPAL.match(f"User:{user}")]
    # What Berth's records keep.
    with provider.database.session(write=False) as session:
        kept = [resources.details(resource) for resource in resources.live(session, SERVICE)
                if resource.state in (resources.CREATING, resources.ACTIVE)]
    kept_principals = {f"User:{principal}" for details in kept
                       for principal in (details["principal"],
                                         *(grant["principal"] for grant in (details.get("grants") or {}).values()))}
    kept_prefixes = {details["prefix"] for details in kept}

    gone = Leftovers(principals=sorted(principals - kept_principals),
                     quotas=sorted(user for user in quota_users if f"User:{user}" not in kept_principals),
                     topics=sorted(name for name in topics if _prefix(name) not in kept_prefixes),
                     groups=sorted(group for group in groups if _prefix(group) not in kept_prefixes))
    if not gone:
        return gone
    log.warning("kafka reconciler: removing leftovers no record owns: principals %s, quotas of %s, topics %s, "
                "consumer groups %s", gone.principals, gone.quotas, gone.topics, gone.groups)
    if gone.principals:
        provider._wait(admin.delete_acls([_acl_filter(principal) for principal in gone.principals]), "deleting ACLs")
    for user in gone.quotas:
        try:
            alter_user_quotas(found.controller or found.admin_bootstrap, user,
                              {"producer_byte_rate": None, "consumer_byte_rate": None}, provider.timeout, tls=tls)
        except (OSError, QuotaError) as exc:
            log.error("kafka reconciler: removing the quotas of %s failed: %s", user, exc)
    if gone.topics:
        provider._wait(admin.delete_topics(gone.topics, operation_timeout=provider.timeout), "deleting topics",
                       ignore=(KafkaError.UNKNOWN_TOPIC_OR_PART,))
    if gone.groups:
        provider._drop_groups(admin, gone.groups)
    return gone


__all__ = ["Leftovers", "reconcile"]
