"""The first-party Kafka add-on (`kafka`): a prefix of topics and consumer groups on a shared
cluster, reached over mTLS, after Heroku's multi-tenant Basic plans (`specs/backends.md` §3, §8).

Each add-on gets:

- a prefix `<word>-<8 hex>.` (`KAFKA_PREFIX`): its topics, consumer groups and transactional
  ids must start with it;
- a client certificate whose subject is `CN=<principal>`, signed by the add-on CA (`ca.py`);
  the brokers map it to `User:<principal>` (`ssl.principal.mapping.rules`, §8.2);
- PREFIXED allow ACLs for that principal: topics Read/Write/Describe/DescribeConfigs, groups
  Read/Describe/Delete, transactional ids Write/Describe. No Create/Alter/Delete on topics and
  no auto-creation: topics are made only through `create_topic`;
- client quotas `producer_byte_rate` / `consumer_byte_rate` for the principal, per plan.

Each grant (an OSB binding, `grant`/`revoke`) gets a principal and client certificate of its own
with the same prefix ACLs and quotas; revoking deletes its ACLs and quotas (the certificate still
completes a TLS handshake until it expires, but the authorizer refuses it every request, open
connections included). Deprovisioning removes every grant's ACLs and quotas with the add-on's.

Config: `KAFKA_URL` (comma-separated `kafka+ssl://host:port`), `KAFKA_TRUSTED_CERT` (the CA),
`KAFKA_CLIENT_CERT`, `KAFKA_CLIENT_CERT_KEY` (PKCS#8 PEM), `KAFKA_PREFIX`.

The cluster is `BERTH_KAFKA_BOOTSTRAP` (the mTLS listener apps use) administered through
`BERTH_KAFKA_ADMIN_BOOTSTRAP` (a listener where Berth is a super user) when set, reached with the
client certificate the operator gave Berth (`external.py`: checked when the provider is built),
else the embedded single-node broker (`broker.py`), administered over mutual TLS with
Berth's admin certificate.

Record first (`berth.addons.resources`): the row with the prefix, principal and client key and
certificate is committed in state `creating` before anything is made on the cluster (or the
embedded broker is even started); ACLs and quotas are then set idempotently and the row becomes
`active`. A repeated provision returns the same config and finishes one that crashed half-way.
Every call on an add-on holds its lock across threads and processes (an flock, `_lock_for`), so a
deprovision racing a provision waits for it and then removes what it made.

When the embedded broker is not up, a provision does not race Berth's call timeout with a JVM
start: it records the add-on with the callback and grant Berth sent, answers 202, and a thread
finishes it (start the broker, ACLs, quotas, then `completion.py`: grant exchange, config PATCH,
actions/provision). Should that process die, the backends loop (`resume_pending`) finishes it
from the record; `reconcile.py` removes whatever the broker holds that no record owns.

Topic names may be given with or without the prefix: a name that does not start with it gets it
added (`events` → `cedar-1a2b3c4d.events`). Partition counts, retention and the plan's total
partitions are checked before anything is created (ProviderError 422 otherwise).

confluent-kafka has no client-quota API (§8.4), so quotas are set with Kafka's own
AlterClientQuotas request (v0), written to the cluster directly (`alter_user_quotas`): no JVM
launch per provision, and it works against an external cluster without the jars.

Speed: every metadata change (ACLs, quotas, topics) costs ~30 ms, mostly the controller's
metadata-log append linger; a broker forwards such changes to the controller one at a time and
answers one request per connection at a time. So independent changes are put in flight
together, and on the embedded broker quota changes go straight to its controller listener
(loopback, mTLS as the admin) beside the ACL change the broker forwards, sharing one commit.
"""
from __future__ import annotations

import contextlib
import logging
import re
import secrets
import socket
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from sqlalchemy.exc import IntegrityError

from berth.addons import resources
from berth.addons.kafka import broker, completion, external
from berth.addons.kafka import ca as kafka_ca
from berth.addons.kafka.plans import DEFAULT_PARTITIONS, DEFAULT_RETENTION_MS, PLANS, Plan
from berth.broker.partner_api.provider import ActionResult, ProviderError, Provisioned, ProvisionRequest
from berth.config import Settings
from berth.db import Database
from berth.supervise import locks

log = logging.getLogger(__name__)

SERVICE = "kafka"
EMBEDDED = "embedded"
ADMIN_TIMEOUT = 30.0
UUID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}\Z")
TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]+\Z")
MAX_TOPIC_LENGTH = 249
WORDS = ("amber", "aspen", "basalt", "birch", "cedar", "cobalt", "coral", "delta", "ember", "fjord",
         "garnet", "glacier", "harbor", "indigo", "juniper", "kelp", "lagoon", "maple", "meadow", "onyx",
         "orchid", "pebble", "quartz", "reef", "saffron", "sierra", "spruce", "tundra", "willow", "zephyr")

LOCK_STRIPES = 64
VISIBLE_TIMEOUT = 10.0
POLL_FIRST, POLL_MAX = 0.002, 0.05  # seconds between checks in `_await`: first, and at most
KEPT_AFTER_DELETION = ("prefix", "principal", "location", "bootstrap", "admin_bootstrap")  # no secrets
TOPIC_OPERATIONS = (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)
GROUP_OPERATIONS = (AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE)
TRANSACTIONAL_OPERATIONS = (AclOperation.WRITE, AclOperation.DESCRIBE)


@dataclass(frozen=True)
class Cluster:
    bootstrap: str        # host:port,... of the mTLS listener (what KAFKA_URL names)
    admin_bootstrap: str  # host:port,... of the listener Berth administers through
    location: str         # "embedded", or the bootstrap list (the record's `location`)


def principal_of(details: Mapping[str, Any]) -> str:
    return f"User:{details['principal']}"


def kafka_url(bootstrap: str) -> str:
    return ",".join(f"kafka+ssl://{address.strip()}" for address in bootstrap.split(",") if address.strip())


def tenant_acls(prefix: str, principal: str) -> list[AclBinding]:
    """§8.1's PREFIXED allow ACLs for one tenant."""
    wanted = ([(ResourceType.TOPIC, op) for op in TOPIC_OPERATIONS]
              + [(ResourceType.GROUP, op) for op in GROUP_OPERATIONS]
              + [(ResourceType.TRANSACTIONAL_ID, op) for op in TRANSACTIONAL_OPERATIONS])
    return [AclBinding(resource, prefix, ResourcePatternType.PREFIXED, principal, "*", op, AclPermissionType.ALLOW)
            for resource, op in wanted]


class KafkaProvider:
    """`plans` replaces the plan table (tests may make a small one)."""

    def __init__(self, database: Database, settings: Settings, *, plans: Mapping[str, Plan] | None = None,
                 timeout: float = ADMIN_TIMEOUT) -> None:
        self.database, self.settings = database, settings
        self.plans = dict(PLANS if plans is None else plans)
        self.timeout = timeout
        self._admins: dict[tuple[str, str], AdminClient] = {}
        self._guard = threading.Lock()
        # An external cluster's admin credentials, checked now: Berth refuses to start without them.
        self._external = external.admin_access(settings) if settings is not None else None

    # -- the Provider protocol -----------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "id": SERVICE,
            "name": "Heroku-style Kafka",
            "description": ("Apache Kafka on a shared cluster: each add-on owns the topics and consumer "
                            "groups under its KAFKA_PREFIX, reaches the brokers over mutual TLS with its "
                            "own client certificate, and is held to its plan's produce and consume quotas, "
                            "partitions and retention. Topics are created through Berth, never by clients."),
            "categories": ["Data Stores"],
            "state": "ga",
            "api": {
                "version": "3",
                "config_vars_prefix": "KAFKA",
                "config_vars": ["KAFKA_URL", "KAFKA_TRUSTED_CERT", "KAFKA_CLIENT_CERT", "KAFKA_CLIENT_CERT_KEY",
                                "KAFKA_PREFIX"],
                "regions": ["*"],
                "requires": ["many_per_app", "attachable", "grants"],
                # Berth's OAuth client secret for this service: a slow provision answers 202 and
                # finishes through the partner endpoints, which start with the grant exchange.
                **({"client_secret": completion.client_secret(self.settings)} if self.settings else {}),
            },
            "plans": [plan.manifest_entry() for plan in self.plans.values()],
        }

    def provision(self, request: ProvisionRequest) -> Provisioned:
        plan = self._plan(request.plan)
        if request.options:
            raise ProviderError(f"Kafka takes no options (got {', '.join(sorted(request.options))}).", 422)
        _check_id(request.uuid, 422)
        with self._lock_for(request.uuid):
            state, details = self._record(request.uuid)
            if state in (resources.DELETING, resources.DELETED):
                raise ProviderError("This add-on has been deprovisioned; its id cannot be used again.", 422)
            if state == resources.ACTIVE and "pending" not in details:
                return Provisioned(id=request.uuid, config=_config(details))
            if state is None:  # recorded before anything exists (or is started) anywhere
                state, details = self._reserve(request.uuid, plan, self._planned_cluster())
                if state == resources.ACTIVE:
                    return Provisioned(id=request.uuid, config=_config(details))
            asynchronous = request.callback_url is not None and request.oauth_grant is not None
            if asynchronous and not self._cluster_ready(details):
                # The embedded broker is not up: starting a JVM takes longer than Berth waits for
                # an answer. Answer 202 now and finish through the partner endpoints.
                self._remember_callback(request.uuid, request.callback_url or "", request.oauth_grant or {})
                self._finish_in_background(request.uuid)
                return Provisioned(id=request.uuid, config={}, accepted=True,
                                   message="Kafka is starting; the add-on is ready in a minute or so.")
            details = self._create_on_cluster(request.uuid, details)
            self._forget_callback(request.uuid)  # answered now: no callback (a retry after a lost 202)
        return Provisioned(id=request.uuid, config=_config(details))

    def finish_pending(self, uuid: str, *, wait: bool = True) -> bool:
        """Finish an accepted provision: create it on the cluster (starting the embedded broker),
        then tell Berth through the partner endpoints. Under the add-on's lock, so a racing
        deprovision waits or goes first; `wait=False` gives up at once when another process holds
        it. True when nothing is left to do for it."""
        try:
            with self._lock_for(uuid, wait=wait):
                state, details = self._record(uuid)
                pending = details.get("pending")
                if state not in (resources.CREATING, resources.ACTIVE) or not pending:
                    return True
                if state == resources.CREATING:
                    details = self._create_on_cluster(uuid, details)
                outcome = completion.complete(self.settings, uuid, pending, _config(details),
                                              save_token=lambda token: self._save_callback_token(uuid, token))
                if outcome is completion.Outcome.RETRY:
                    return False
                self._forget_callback(uuid)
                return True
        except BlockingIOError:
            return False
        except ProviderError as exc:  # the cluster is not reachable yet: the backends loop retries
            log.error("kafka %s: finishing the provision failed: %s; trying again shortly", uuid, exc.message)
            return False
        except Exception:  # in a thread or the backends loop: must reach the log, and be retried
            log.exception("kafka %s: finishing the provision crashed; trying again shortly", uuid)
            return False

    def resume_pending(self) -> int:
        """Finish accepted provisions nobody is finishing (their web process died, the broker
        failed to start): the backends loop calls this. Returns how many are still pending."""
        with self.database.session(write=False) as session:
            waiting = [resource.id for resource in resources.live(session, SERVICE)
                       if resource.state in (resources.CREATING, resources.ACTIVE)
                       and "pending" in resources.details(resource)]
        return sum(not self.finish_pending(uuid, wait=False) for uuid in waiting)

    def _create_on_cluster(self, uuid: str, details: dict[str, Any]) -> dict[str, Any]:
        """ACLs and quotas for a recorded add-on, which then becomes `active`. `applying` is
        committed first: from then on a deprovision must clean up on the cluster."""
        if details.get("location") == EMBEDDED:
            self._cluster()  # starts the embedded broker if need be
        if not details.get("applying"):
            details = self._update_details(uuid, {"applying": True})
        admin = self._admin(details)
        principal = principal_of(details)
        wanted = tenant_acls(details["prefix"], principal)
        # ACLs and quotas are independent controller writes (~30 ms each, mostly the metadata
        # log's append linger): in flight together they share one commit. Both idempotent.
        created = admin.create_acls(wanted)
        self._set_quotas(details)
        self._wait(created, "creating ACLs")
        self._await_acls(admin, principal, len(wanted))
        with self.database.transaction() as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is not None and resource.state == resources.CREATING:
                resource.state = resources.ACTIVE
        return details

    def change_plan(self, uuid: str, plan: str) -> dict[str, str] | None:
        new_plan = self._plan(plan)
        with self._lock_for(uuid):
            details = self._active(uuid)
            admin = self._admin(details)
            topics = self._describe(admin, details["prefix"])
            used = sum(topic["partitions"] for topic in topics)
            if used > new_plan.max_partitions:
                raise ProviderError(f"Cannot change to {new_plan.name}: its topics use {used} partitions and "
                                    f"{new_plan.name} allows {new_plan.max_partitions}. Delete topics first.", 422)
            too_long = [topic["name"] for topic in topics if topic["retention_ms"] > new_plan.max_retention_ms]
            if too_long:
                raise ProviderError(f"Cannot change to {new_plan.name}: topics {', '.join(too_long)} keep data "
                                    f"longer than its maximum retention of {new_plan.max_retention_ms} ms. "
                                    "Lower their retention first.", 422)
            details = {**details, **new_plan.limits()}
            self._set_quotas(details)
            for grant in (details.get("grants") or {}).values():
                self._set_quotas({**details, "principal": grant["principal"]})
            if topics:
                self._alter_topic_configs(admin, [topic["name"] for topic in topics],
                                          {"retention.bytes": str(details["retention_bytes"])})
            with self.database.transaction() as session:
                resource = resources.find(session, SERVICE, uuid)
                if resource is not None:
                    resources.set_details(resource, details)
                    resource.plan = new_plan.name
        return None

    def deprovision(self, uuid: str) -> bool:
        if not UUID_RE.match(uuid):
            return False
        with self._lock_for(uuid):
            with self.database.transaction() as session:
                resource = resources.find(session, SERVICE, uuid)
                if resource is None or resource.state == resources.DELETED:
                    return False
                details = resources.details(resource)
                if resource.state == resources.CREATING and not details.get("applying"):
                    # Accepted, never begun on the cluster (we hold its lock): nothing to remove.
                    resource.state = resources.DELETED
                    resources.set_details(resource, {key: details.get(key) for key in KEPT_AFTER_DELETION})
                    return True
                resource.state = resources.DELETING
            if details.get("location") == EMBEDDED:
                self._cluster()  # the embedded broker must be up to clean up in it
            self._tear_down(self._admin(details), self._admin(details, "reader"),
                            details)
            with self.database.transaction() as session:
                resource = resources.find(session, SERVICE, uuid)
                if resource is not None:
                    resource.state = resources.DELETED
                    resources.set_details(resource, {key: details.get(key) for key in KEPT_AFTER_DELETION})
        return True

    # -- grants: a principal per OSB binding -----------------------------------------------------

    def grant(self, uuid: str, grant_id: str) -> dict[str, str]:
        """The add-on's config with a client certificate of the grant's own, whose principal has
        the add-on's prefix ACLs and quotas; recorded before anything is made on the cluster."""
        with self._lock_for(uuid):
            details = self._active(uuid)
            entry = (details.get("grants") or {}).get(grant_id)
            if entry is None:
                try:
                    authority = kafka_ca.for_settings(self.settings)
                except kafka_ca.CAError as exc:
                    log.error("the Kafka CA: %s", exc)
                    raise ProviderError("The Kafka certificate authority is not available.", 503) from exc
                principal = f"kafka-{secrets.token_hex(8)}"  # the reconciler's pattern: it keeps recorded ones
                issued = kafka_ca.issue_client(authority, principal)
                entry = {"principal": principal, "client_cert": issued.cert_pem, "client_key": issued.key_pem}
                details = self._update_details(uuid, {"grants": {**(details.get("grants") or {}), grant_id: entry}})
            own = {**details, "principal": entry["principal"]}  # the grant in the add-on's shape
            admin = self._admin(details)
            wanted = tenant_acls(details["prefix"], principal_of(own))
            created = admin.create_acls(wanted)
            self._set_quotas(own)
            self._wait(created, "creating ACLs")
            self._await_acls(admin, principal_of(own), len(wanted))
        return _config({**details, "client_cert": entry["client_cert"], "client_key": entry["client_key"]})

    def revoke(self, uuid: str, grant_id: str) -> bool:
        """The grant's principal loses its ACLs and quotas (the brokers show it before this
        returns); then the grant leaves the record."""
        if not UUID_RE.match(uuid):
            return False
        with self._lock_for(uuid):
            state, details = self._record(uuid)
            entry = (details.get("grants") or {}).get(grant_id)
            if state != resources.ACTIVE or entry is None:
                return False  # none, or deprovisioned: its ACLs went with the add-on's
            if details.get("location") == EMBEDDED:
                self._cluster()
            own = {**details, "principal": entry["principal"]}
            admin = self._admin(details)
            deleted = admin.delete_acls([_acl_filter(principal_of(own))])
            self._remove_quotas(own)
            self._wait(deleted, "deleting ACLs")
            self._await_acls(self._admin(details, "reader"), principal_of(own), 0)
            left = {key: value for key, value in details["grants"].items() if key != grant_id}
            self._update_details(uuid, {"grants": left})
        return True

    # -- topics (beyond the protocol) ----------------------------------------------------------

    def topic_name(self, uuid: str, name: str) -> str:
        """The full topic name for `name` (the prefix added unless it starts with it)."""
        return self._full_name(self._active(uuid)["prefix"], name)

    def create_topic(self, uuid: str, name: str, partitions: int = DEFAULT_PARTITIONS,
                     retention_ms: int = DEFAULT_RETENTION_MS) -> dict[str, Any]:
        """Create topic `name` (prefix added if missing) with `partitions` partitions and `retention_ms`
        retention. Repeating it with the same settings returns the existing topic; anything over the
        plan's limits is refused (422) before anything is created."""
        with self._lock_for(uuid):
            details = self._active(uuid)
            full = self._full_name(details["prefix"], name)
            partitions = _integer(partitions, "partitions")
            retention_ms = _integer(retention_ms, "retention_ms")
            self._check_retention(details, retention_ms)
            if partitions < 1:
                raise ProviderError("A topic needs at least 1 partition.", 422)
            admin = self._admin(details)
            topics = {topic["name"]: topic for topic in self._describe(admin, details["prefix"])}
            if full in topics:
                found = topics[full]
                if found["partitions"] == partitions and found["retention_ms"] == retention_ms:
                    return found
                raise ProviderError(f"Topic {full} already exists with {found['partitions']} partitions and "
                                    f"retention {found['retention_ms']} ms.", 422)
            used = sum(topic["partitions"] for topic in topics.values())
            if used + partitions > details["max_partitions"]:
                raise ProviderError(f"Topic {full} would need {partitions} partitions, but this plan allows "
                                    f"{details['max_partitions']} in all and {used} are in use "
                                    f"({details['max_partitions'] - used} left).", 422)
            config = {"cleanup.policy": "delete", "retention.ms": str(retention_ms),
                      "retention.bytes": str(details["retention_bytes"]),
                      "segment.bytes": str(_segment_bytes(details["retention_bytes"]))}
            self._wait(admin.create_topics([NewTopic(full, num_partitions=partitions, replication_factor=-1,
                                                     config=config)], operation_timeout=self.timeout),
                       "creating a topic", ignore=(KafkaError.TOPIC_ALREADY_EXISTS,))
            self._await(lambda: full in self._topic_names(admin), f"topic {full} to appear")
            return {"name": full, "partitions": partitions, "retention_ms": retention_ms}

    def list_topics(self, uuid: str) -> list[dict[str, Any]]:
        """The add-on's topics, by name: `{"name", "partitions", "retention_ms"}`."""
        details = self._active(uuid)
        return self._describe(self._admin(details), details["prefix"])

    def configure_topic(self, uuid: str, name: str, retention_ms: int) -> dict[str, Any]:
        """Change a topic's retention (the partition count is fixed after creation, as on Heroku)."""
        with self._lock_for(uuid):
            details = self._active(uuid)
            full = self._full_name(details["prefix"], name)
            retention_ms = _integer(retention_ms, "retention_ms")
            self._check_retention(details, retention_ms)
            admin = self._admin(details)
            topics = {topic["name"]: topic for topic in self._describe(admin, details["prefix"])}
            if full not in topics:
                raise ProviderError(f"No topic {full}.", 404)
            self._alter_topic_configs(admin, [full], {"retention.ms": str(retention_ms)})
            self._await(lambda: any(topic["name"] == full and topic["retention_ms"] == retention_ms
                                    for topic in self._describe(admin, details["prefix"])),
                        f"topic {full}'s new retention")
            return {**topics[full], "retention_ms": retention_ms}

    def delete_topic(self, uuid: str, name: str) -> bool:
        """Delete a topic and its data; False when there is no such topic."""
        with self._lock_for(uuid):
            details = self._active(uuid)
            full = self._full_name(details["prefix"], name)
            admin = self._admin(details)
            if full not in self._topic_names(admin):
                return False
            self._wait(admin.delete_topics([full], operation_timeout=self.timeout), "deleting a topic",
                       ignore=(KafkaError.UNKNOWN_TOPIC_OR_PART,))
            self._await(lambda: full not in self._topic_names(admin), f"topic {full} to go")
            return True

    def action(self, uuid: str, name: str, params: dict[str, Any]) -> ActionResult:
        """`topics-list`, `topics-create` {name, partitions?, retention_ms?}, `topics-configure`
        {name, retention_ms}, `topics-delete` {name}, `info` (plan, prefix, limits, usage)."""
        if name == "topics-list":
            return ActionResult(result=self.list_topics(uuid))
        if name in ("topics-create", "topics-configure", "topics-delete"):
            topic = params.get("name")
            if not isinstance(topic, str) or not topic:
                raise ProviderError("Give the topic's name.", 422)
            if name == "topics-create":
                created = self.create_topic(uuid, topic, params.get("partitions", DEFAULT_PARTITIONS),
                                            params.get("retention_ms", DEFAULT_RETENTION_MS))
                return ActionResult(message=f"Topic {created['name']} created.", result=created)
            if name == "topics-configure":
                if "retention_ms" not in params:
                    raise ProviderError("Give retention_ms.", 422)
                changed = self.configure_topic(uuid, topic, params["retention_ms"])
                return ActionResult(message=f"Topic {changed['name']} updated.", result=changed)
            if not self.delete_topic(uuid, topic):
                raise ProviderError(f"No topic {topic}.", 404)
            return ActionResult(message=f"Topic {topic} deleted.")
        if name == "info":
            details = self._active(uuid)
            topics = self.list_topics(uuid)
            return ActionResult(result={
                "plan": self.details(uuid)["plan"], "prefix": details["prefix"], "topics": len(topics),
                "partitions_used": sum(topic["partitions"] for topic in topics),
                **{key: details[key] for key in ("max_partitions", "min_retention_ms", "max_retention_ms",
                                                 "producer_byte_rate", "consumer_byte_rate")}})
        raise ProviderError(f"Kafka has no action {name!r}; it has topics-list, topics-create, "
                            "topics-configure, topics-delete and info.", 404)

    def details(self, uuid: str) -> dict[str, Any]:
        """The add-on's record (with its client key): for operators and tests."""
        found = resources.snapshot(self.database, SERVICE, uuid)
        if found is None:
            raise ProviderError("No such Kafka add-on.", 404)
        return found

    def quotas(self, uuid: str) -> dict[str, float]:
        """The client quotas the cluster holds for the add-on's principal."""
        details = self.details(uuid)
        return describe_user_quotas(details["admin_bootstrap"], details["principal"], self.timeout,
                                    tls=self._admin_tls(details))

    # -- steps ---------------------------------------------------------------------------------

    def _plan(self, name: str) -> Plan:
        plan = self.plans.get(name)
        if plan is None:
            raise ProviderError(f"Unknown plan {name!r}; plans: {', '.join(self.plans)}.", 422)
        return plan

    def _lock_for(self, uuid: str, *, wait: bool = True) -> contextlib.AbstractContextManager[None]:
        """The add-on's lock across threads and processes (web workers, the backends process):
        an flock on one of LOCK_STRIPES files, so no lock file is ever left per add-on.
        `wait=False` raises BlockingIOError when it is held."""
        stripe = zlib.crc32(uuid.encode()) % LOCK_STRIPES
        return locks.file_lock(broker.root(self.settings) / "locks" / f"{stripe}.lock", wait=wait)

    def _record(self, uuid: str) -> tuple[str | None, dict[str, Any]]:
        with self.database.session(write=False) as session:
            found = resources.find(session, SERVICE, uuid)
            return (found.state, resources.details(found)) if found is not None else (None, {})

    def _update_details(self, uuid: str, changes: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
        with self.database.transaction() as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is None:
                raise ProviderError("No such Kafka add-on.", 404)
            details = {key: value for key, value in {**resources.details(resource), **changes}.items()
                       if key not in drop}
            resources.set_details(resource, details)
            return details

    def _remember_callback(self, uuid: str, callback_url: str, grant: Mapping[str, str]) -> None:
        state, details = self._record(uuid)
        if "pending" not in details:  # a repeated 202 keeps the first grant (maybe already exchanged)
            self._update_details(uuid, {"pending": {"callback_url": callback_url, "grant": dict(grant)}})

    def _save_callback_token(self, uuid: str, token: str) -> None:
        _, details = self._record(uuid)
        if "pending" in details:
            self._update_details(uuid, {"pending": {**details["pending"], "token": token}})

    def _forget_callback(self, uuid: str) -> None:
        if "pending" in self._record(uuid)[1]:
            self._update_details(uuid, {}, drop=("pending",))

    def _finish_in_background(self, uuid: str) -> None:
        """A thread of this process finishes it at once; if the process dies first, the backends
        loop (`resume_pending`) does, from what the record holds."""
        threading.Thread(target=self.finish_pending, args=(uuid,), name=f"kafka-finish-{uuid[:8]}",
                         daemon=True).start()

    def _planned_cluster(self) -> Cluster:
        """Where a new add-on goes, without starting anything."""
        if self.settings.kafka_bootstrap:
            return self._cluster()
        found = broker.planned_endpoints(self.settings)
        return Cluster(found.bootstrap, found.admin_bootstrap, EMBEDDED)

    def _cluster_ready(self, details: Mapping[str, Any]) -> bool:
        return details.get("location") != EMBEDDED or broker.ready(self.settings)

    def _cluster(self) -> Cluster:
        settings = self.settings
        if settings.kafka_bootstrap:
            if not settings.kafka_admin_bootstrap:
                raise ProviderError("Kafka is not configured: BERTH_KAFKA_ADMIN_BOOTSTRAP must name the "
                                    "listener Berth administers the cluster through.", 503)
            return Cluster(settings.kafka_bootstrap, settings.kafka_admin_bootstrap, settings.kafka_bootstrap[:255])
        try:
            found = broker.ensure_embedded(settings)
        except broker.KafkaError as exc:
            log.error("starting the embedded Kafka: %s", exc)
            raise ProviderError("The Kafka broker is not available; try again.", 503) from exc
        return Cluster(found.bootstrap, found.admin_bootstrap, EMBEDDED)

    def _reserve(self, uuid: str, plan: Plan, cluster: Cluster) -> tuple[str, dict[str, Any]]:
        """A new record in state `creating` (prefix, principal, client certificate), committed
        before anything exists on the cluster; or the one another caller made first."""
        try:
            authority = kafka_ca.for_settings(self.settings)
        except kafka_ca.CAError as exc:
            log.error("the Kafka CA: %s", exc)
            raise ProviderError("The Kafka certificate authority is not available.", 503) from exc
        principal = f"kafka-{secrets.token_hex(8)}"
        issued = kafka_ca.issue_client(authority, principal)
        try:
            with self.database.transaction() as session:
                if session.get(resources.ProviderResource, uuid) is not None:
                    raise ProviderError("This id belongs to another add-on.", 422)
                taken = {resources.details(resource).get("prefix") for resource in resources.live(session, SERVICE)}
                prefix = _new_prefix(taken)
                details = {"prefix": prefix, "principal": principal, "bootstrap": cluster.bootstrap,
                           "admin_bootstrap": cluster.admin_bootstrap, "location": cluster.location,
                           "trusted_cert": authority.cert_pem, "client_cert": issued.cert_pem,
                           "client_key": issued.key_pem, **plan.limits()}
                resources.record(session, SERVICE, uuid, plan.name, cluster.location, details)
            return resources.CREATING, details
        except IntegrityError:  # another process recorded this uuid first: use its record
            with self.database.session(write=False) as session:
                existing = resources.find(session, SERVICE, uuid)
                if existing is None:
                    raise ProviderError("This id belongs to another add-on.", 422) from None
                return existing.state, resources.details(existing)

    def _active(self, uuid: str) -> dict[str, Any]:
        if not UUID_RE.match(uuid):
            raise ProviderError("No such Kafka add-on.", 404)
        with self.database.session(write=False) as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is None or resource.state in (resources.DELETING, resources.DELETED):
                raise ProviderError("No such Kafka add-on.", 404)
            if resource.state != resources.ACTIVE:
                raise ProviderError("This Kafka add-on is still being provisioned.", 503)
            details = resources.details(resource)
        if details.get("location") == EMBEDDED:
            self._cluster()
        return details

    def _admin(self, details: Mapping[str, Any], role: str = "provider") -> AdminClient:
        """One long-lived client per cluster and `role`: a client's first connection and metadata
        cost more than a request. Roles are separate connections, so that reads in one are not
        queued behind a slow change in another (a broker answers a connection in order).
        Both the embedded broker's admin listener and an external one get Berth's admin certificate (mTLS)."""
        admin_bootstrap = details["admin_bootstrap"]
        with self._guard:
            client = self._admins.get((admin_bootstrap, role))
            if client is None:
                if details.get("location") == EMBEDDED:
                    config = broker.admin_client_config(self.settings, admin_bootstrap)
                else:
                    config = self._external_access().client_config(admin_bootstrap)
                client = AdminClient({**config, "client.id": f"berth-kafka-{role}",
                                      "socket.connection.setup.timeout.ms": 5000})
                self._admins[(admin_bootstrap, role)] = client
            return client

    def _admin_tls(self, details: Mapping[str, Any]) -> ssl.SSLContext | None:
        """How raw admin requests (client quotas) reach the cluster: with Berth's admin
        certificate on the embedded broker; with the one the operator issued it on an external cluster."""
        if details.get("location") == EMBEDDED:
            return broker.admin_ssl_context(self.settings)
        return self._external_access().ssl_context()

    def _external_access(self) -> external.AdminAccess:
        if self._external is None:  # a record on an external cluster, but none is configured now
            raise ProviderError("This Kafka add-on is on an external cluster Berth is no longer configured for "
                                "(BERTH_KAFKA_BOOTSTRAP is unset).", 503)
        return self._external

    def _wait(self, futures: Any, what: str, ignore: tuple[int, ...] = ()) -> list[Any]:
        """Every future's result; a Kafka error → ProviderError 503 (one in `ignore` is fine)."""
        items = futures.values() if isinstance(futures, dict) else [futures]
        results = []
        for future in items:
            try:
                results.append(future.result(timeout=self.timeout))
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is not None and error.code() in ignore:
                    continue
                log.error("kafka: %s failed: %s", what, exc)
                raise ProviderError(f"Kafka failed while {what}; try again.", 503) from exc
            except Exception as exc:  # a timeout (concurrent.futures.TimeoutError) or the client's own error
                log.error("kafka: %s failed: %r", what, exc)
                raise ProviderError(f"Kafka did not answer while {what}; try again.", 503) from exc
        return results

    def _tear_down(self, admin: AdminClient, reader: AdminClient, details: Mapping[str, Any]) -> None:
        """Delete the tenant's ACLs, topics, consumer groups and quotas, and return once the
        brokers no longer show its ACLs and topics. The deletions are independent, so they are
        in flight at once; the ACLs go first so that the certificate loses its rights soonest.
        Every step is idempotent (a retry after a crash finds less to delete).

        A broker answers a connection's requests in order, so changes go through `admin` and
        reads meanwhile through `reader`; quotas go by their own connection (`_quota_address`).
        Sending the topic deletion to the controller too was tried: in one commit with the ACL
        removal it delayed the broker's view of the latter by 20-150 ms, more than it saved."""
        prefix = details["prefix"]
        granted = [{**details, "principal": grant["principal"]} for grant in (details.get("grants") or {}).values()]
        acls = admin.delete_acls([_acl_filter(principal_of(each)) for each in (details, *granted)])
        topics = [name for name in self._topic_names(reader) if name.startswith(prefix)]
        deleted = admin.delete_topics(topics, operation_timeout=self.timeout) if topics else {}
        for each in (details, *granted):
            self._remove_quotas(each)
        self._wait(acls, "deleting ACLs")
        for each in (details, *granted):
            self._await_acls(reader, principal_of(each), 0)  # while the topic deletion is still in flight
        # Groups are listed only now: without ACLs the tenant can start no new one meanwhile
        # (the group coordinator answers in a ms or two; no controller write).
        self._delete_groups(reader, prefix)
        self._wait(deleted, "deleting topics", ignore=(KafkaError.UNKNOWN_TOPIC_OR_PART,))
        if topics:
            self._await(lambda: not set(topics) & set(self._topic_names(reader)), f"{prefix}* topics to go")

    def _await_acls(self, admin: AdminClient, principal: str, count: int) -> None:
        """Wait until the brokers' authorizer shows `count` ACLs for `principal`: an app given its
        config (or a certificate just deprovisioned) must meet the new ACLs, not the old ones."""
        self._await(lambda: len(self._wait(admin.describe_acls(_acl_filter(principal)), "reading ACLs")[0]) == count,
                    f"{count} ACLs for {principal}")

    @staticmethod
    def _await(check: Callable[[], bool], what: str) -> None:
        """Metadata reaches the brokers a moment after the controller accepted a change: wait (a
        little) until the brokers show it, so that what a call returns is what clients then meet.
        The lag is usually a few ms, so polling starts tight and backs off."""
        deadline = time.monotonic() + VISIBLE_TIMEOUT
        delay = POLL_FIRST
        while not check():
            if time.monotonic() > deadline:
                log.warning("kafka: waited %.0f s for %s in vain", VISIBLE_TIMEOUT, what)
                return
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    def _topic_names(self, admin: AdminClient) -> list[str]:
        try:
            return sorted(admin.list_topics(timeout=self.timeout).topics)
        except KafkaException as exc:
            log.error("kafka: listing topics failed: %s", exc)
            raise ProviderError("Kafka did not answer while listing topics; try again.", 503) from exc

    def _describe(self, admin: AdminClient, prefix: str) -> list[dict[str, Any]]:
        try:
            metadata = admin.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise ProviderError("Kafka did not answer while listing topics; try again.", 503) from exc
        names = sorted(name for name in metadata.topics if name.startswith(prefix))
        if not names:
            return []
        configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, name) for name in names])
        retention: dict[str, int] = {}
        for resource, future in configs.items():
            try:
                entries = future.result(timeout=self.timeout)
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue  # deleted meanwhile
                raise ProviderError("Kafka did not answer while describing topics; try again.", 503) from exc
            retention[resource.name] = int(entries["retention.ms"].value)
        return [{"name": name, "partitions": len(metadata.topics[name].partitions), "retention_ms": retention[name]}
                for name in names if name in retention]

    def _alter_topic_configs(self, admin: AdminClient, names: list[str], values: dict[str, str]) -> None:
        changes = [ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in values.items()])
            for name in names]
        self._wait(admin.incremental_alter_configs(changes), "changing topic settings")

    def _delete_groups(self, admin: AdminClient, prefix: str) -> None:
        listed = self._wait(admin.list_consumer_groups(request_timeout=self.timeout), "listing consumer groups")
        self._drop_groups(admin, [group.group_id for group in listed[0].valid
                                  if group.group_id.startswith(prefix)] if listed else [])

    def _drop_groups(self, admin: AdminClient, groups: list[str]) -> None:
        if not groups:
            return
        for group, future in admin.delete_consumer_groups(groups, request_timeout=self.timeout).items():
            try:
                future.result(timeout=self.timeout)
            except Exception as exc:  # a group with members left: it expires once they are gone
                log.warning("kafka: could not delete consumer group %s: %s", group, exc)

    def _quota_address(self, details: Mapping[str, Any]) -> str:
        """Where quota changes go: the embedded controller's listener, so that they do not queue
        behind the ACL or topic change the broker is forwarding (see the module's note on speed).
        An external cluster's controllers are not ours to reach: its admin listener."""
        if details.get("location") == EMBEDDED:
            found = broker.endpoints(self.settings)
            if found is not None and found.controller:
                return found.controller
        return details["admin_bootstrap"]

    def _set_quotas(self, details: Mapping[str, Any]) -> None:
        try:
            alter_user_quotas(self._quota_address(details), details["principal"],
                              {"producer_byte_rate": float(details["producer_byte_rate"]),
                               "consumer_byte_rate": float(details["consumer_byte_rate"])}, self.timeout,
                              tls=self._admin_tls(details))
        except (OSError, QuotaError) as exc:
            log.error("kafka: setting quotas failed: %s", exc)
            raise ProviderError("Kafka failed while setting quotas; try again.", 503) from exc

    def _remove_quotas(self, details: Mapping[str, Any]) -> None:
        try:
            alter_user_quotas(self._quota_address(details), details["principal"],
                              {"producer_byte_rate": None, "consumer_byte_rate": None}, self.timeout,
                              tls=self._admin_tls(details))
        except (OSError, QuotaError) as exc:
            log.error("kafka: removing quotas failed: %s", exc)
            raise ProviderError("Kafka failed while removing quotas; try again.", 503) from exc

    @staticmethod
    def _full_name(prefix: str, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ProviderError("Give the topic a name.", 422)
        full = name if name.startswith(prefix) else prefix + name
        if full == prefix:
            raise ProviderError(f"Give the topic a name after the prefix {prefix}.", 422)
        if not TOPIC_RE.match(full) or len(full) > MAX_TOPIC_LENGTH:
            raise ProviderError(f"Topic names may hold only letters, digits, '.', '_' and '-', and {full!r} "
                                f"must be at most {MAX_TOPIC_LENGTH} characters with the prefix.", 422)
        return full

    @staticmethod
    def _check_retention(details: Mapping[str, Any], retention_ms: int) -> None:
        low, high = details["min_retention_ms"], details["max_retention_ms"]
        if not low <= retention_ms <= high:
            raise ProviderError(f"retention_ms must be between {low} ({low // 3_600_000} hours) and {high} "
                                f"({high // 3_600_000} hours) on this plan; got {retention_ms}.", 422)


# -- helpers -----------------------------------------------------------------------------------

def _check_id(uuid: str, status: int) -> None:
    if not UUID_RE.match(uuid):
        raise ProviderError("Not a valid add-on id.", status)


def _acl_filter(principal: str) -> AclBindingFilter:
    """Every ACL of `principal`, whatever the resource and pattern."""
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY,
                            AclPermissionType.ANY)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderError(f"{name} must be a whole number.", 422)
    return value


def _segment_bytes(retention_bytes: int) -> int:
    """Segments small enough for `retention.bytes` to take effect (Kafka deletes whole segments),
    and no smaller than Kafka's minimum of 1 MiB."""
    return max(1024 * 1024, min(1024 ** 3, retention_bytes // 4))


def _new_prefix(taken: set[Any]) -> str:
    while True:
        prefix = f"{secrets.choice(WORDS)}-{secrets.token_hex(4)}."
        if prefix not in taken:
            return prefix


def _config(details: Mapping[str, Any]) -> dict[str, str]:
    return {"KAFKA_URL": kafka_url(details["bootstrap"]), "KAFKA_TRUSTED_CERT": details["trusted_cert"],
            "KAFKA_CLIENT_CERT": details["client_cert"], "KAFKA_CLIENT_CERT_KEY": details["client_key"],
            "KAFKA_PREFIX": details["prefix"]}


# -- client quotas over Kafka's wire protocol ---------------------------------------------------
# AlterClientQuotas (api key 49) and DescribeClientQuotas (48), version 0: the non-flexible
# encoding (int16-length strings, int32-count arrays), request header v1, response header v0.

ALTER_CLIENT_QUOTAS, DESCRIBE_CLIENT_QUOTAS = 49, 48


class QuotaError(RuntimeError):
    """The cluster refused or garbled a client-quota request."""


def _str(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    data = value.encode()
    return struct.pack(">h", len(data)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.at:self.at + length].decode()
        self.at += length
        return value


def _call(address: str, api_key: int, body: bytes, timeout: float, tls: ssl.SSLContext | None = None) -> _Reader:
    host, _, port = address.split(",")[0].strip().rpartition(":")
    host = host.strip("[]")
    correlation = secrets.randbelow(2 ** 31)
    request = struct.pack(">hhi", api_key, 0, correlation) + _str("berth-kafka-quotas") + body
    with socket.create_connection((host, int(port)), timeout=timeout) as raw:
        with (tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            size = struct.unpack(">i", _read_exactly(sock, 4))[0]
            reader = _Reader(_read_exactly(sock, size))
    if reader.take(">i") != correlation:
        raise QuotaError("the answer does not match the request")
    return reader


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            raise QuotaError("the connection closed mid-answer")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def alter_user_quotas(address: str, user: str, values: Mapping[str, float | None], timeout: float = 10.0,
                      tls: ssl.SSLContext | None = None) -> None:
    """Set (a number) or remove (None) client quotas of principal name `user` (without `User:`)."""
    ops = b"".join(_str(key) + struct.pack(">d?", 0.0 if value is None else float(value), value is None)
                   for key, value in values.items())
    body = (struct.pack(">i", 1)                                  # one entry
            + struct.pack(">i", 1) + _str("user") + _str(user)    # its entity
            + struct.pack(">i", len(values)) + ops
            + struct.pack(">?", False))                           # validate_only
    reader = _call(address, ALTER_CLIENT_QUOTAS, body, timeout, tls)
    reader.take(">i")  # throttle time
    for _ in range(reader.take(">i")):
        code, message = reader.take(">h"), reader.string()
        for _ in range(reader.take(">i")):
            reader.string(), reader.string()
        if code:
            raise QuotaError(f"AlterClientQuotas failed with error {code}: {message}")


def describe_user_quotas(address: str, user: str, timeout: float = 10.0,
                         tls: ssl.SSLContext | None = None) -> dict[str, float]:
    """The client quotas set for exactly principal name `user`."""
    return _describe_quotas(address, 0, user, timeout, tls).get(user, {})


def describe_all_user_quotas(address: str, timeout: float = 10.0,
                             tls: ssl.SSLContext | None = None) -> dict[str, dict[str, float]]:
    """Every principal name with client quotas of its own, with them."""
    return _describe_quotas(address, 2, None, timeout, tls)


def _describe_quotas(address: str, match_type: int, user: str | None, timeout: float,
                     tls: ssl.SSLContext | None) -> dict[str, dict[str, float]]:
    """DescribeClientQuotas on user entities: match_type 0 = exactly `user`, 2 = any named user."""
    body = (struct.pack(">i", 1) + _str("user") + struct.pack(">b", match_type) + _str(user)
            + struct.pack(">?", True))
    reader = _call(address, DESCRIBE_CLIENT_QUOTAS, body, timeout, tls)
    reader.take(">i")  # throttle time
    code, message = reader.take(">h"), reader.string()
    if code:
        raise QuotaError(f"DescribeClientQuotas failed with error {code}: {message}")
    found: dict[str, dict[str, float]] = {}
    for _ in range(max(0, reader.take(">i"))):
        entity = dict((reader.string(), reader.string()) for _ in range(reader.take(">i")))
        values = found.setdefault(entity.get("user") or "", {})
        for _ in range(reader.take(">i")):
            key = reader.string() or ""
            values[key] = reader.take(">d")
    return found


__all__ = ["Cluster", "KafkaProvider", "QuotaError", "SERVICE", "alter_user_quotas", "describe_all_user_quotas",
           "describe_user_quotas",
           "kafka_url", "principal_of", "tenant_acls"]
