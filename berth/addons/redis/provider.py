"""The first-party Redis add-on (`redis`): a `Provider` giving each add-on its own redis-server.

Provisioning follows the record-first pattern of `berth.addons.resources`: the row (port,
generated passwords, limits) is committed in state `creating` before any process starts, then
the instance is started idempotently, then the row becomes `active`. Any call repeated after a
crash finds the row and finishes the job with the same port and password, so the same config.

With BERTH_REDIS_SERVERS set, add-ons go to those operator-run servers instead, one add-on per
server (`external.py`): the record (server, tenant password, limits) is committed first, then the
server is emptied and handed to the tenant. Which kind an add-on is follows its record, not the
settings, so add-ons made before the setting changed keep working.

`REDIS_TLS_URL` is the instance's TLS port, `rediss://:PASSWORD@HOST:TLS_PORT`, with a
certificate from the installation's CA (`tls.py`; apps verify it with the CA from `GET /ca.pem`).
`REDIS_URL` is the plain `redis://:PASSWORD@HOST:PORT` while instances listen on loopback
(`BERTH_REDIS_HOST` defaults to 127.0.0.1); on any other host the instance has no plain port and
`REDIS_URL` is the `rediss://` URL too (as on Heroku), so nothing leaves the machine in clear.
Add-ons on operator-run servers get `REDIS_URL` only: their TLS is the operator's.
"""
from __future__ import annotations

import logging
import secrets

import redis
from typing import Any, Callable, Mapping

from berth.addons import resources
from berth.addons.models import ProviderResource
from berth.addons.redis import external, grants, instances, tls
from berth.addons.redis.plans import DEFAULT_POLICY, MAXMEMORY_POLICIES, PLANS, Plan, client_limits
from berth.broker.partner_api.provider import ActionResult, ProviderError, Provisioned, ProvisionRequest
from berth.config import Settings
from berth.db import Database

SERVICE = instances.SERVICE
OPTIONS = ("maxmemory_policy",)
PORT_ATTEMPTS = 3
KEPT_AFTER_DELETION = ("host", "port", "tls_port", "external")  # never a password

log = logging.getLogger(__name__)


class RedisProvider:
    """`plans` replaces the plan table (tests make a tiny one); `ports` is where instances go."""

    def __init__(self, database: Database, settings: Settings, *, plans: Mapping[str, Plan] | None = None,
                 ports: range = instances.DEFAULT_PORTS, start_timeout: float = instances.START_TIMEOUT) -> None:
        self.database, self.settings = database, settings
        self.plans = dict(PLANS if plans is None else plans)
        self.ports, self.start_timeout = ports, start_timeout
        # Parsed now so that a bad BERTH_REDIS_SERVERS stops the process at start, clearly.
        self.servers = external.parse_servers(settings.redis_servers)

    # -- the Provider protocol -----------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {
            "id": SERVICE,
            "name": "Heroku-style Redis",
            "description": ("Redis key-value stores, one dedicated redis-server per add-on, with "
                            "memory and connection limits per plan and a noeviction default policy "
                            "(set `maxmemory_policy` when creating to change it)."),
            "categories": ["Data Stores"],
            "state": "ga",
            "api": {
                "version": "3",
                "config_vars_prefix": "REDIS",
                "config_vars": ["REDIS_URL", tls.CONFIG_VAR],
                "regions": ["*"],
                "requires": ["many_per_app", "attachable", "grants"],
            },
            "plans": [plan.manifest_entry() for plan in self.plans.values()],
        }

    def provision(self, request: ProvisionRequest) -> Provisioned:
        plan = self._plan(request.plan)
        policy = self._policy_option(request.options)
        _check_id(request.uuid, 422)
        state, details = self._reserve(request.uuid, plan, policy)
        if state in (resources.DELETING, resources.DELETED):
            raise ProviderError("This add-on has been deprovisioned; its id cannot be used again.", 422)
        if external.is_external(details):
            if state == resources.CREATING:  # once active the tenant's data lives there: never empty it
                self._external(request.uuid, details, "set up", lambda server: external.prepare(server, details))
        else:
            details = self._start(request.uuid, state, details)
        if state == resources.CREATING:
            with self.database.transaction() as session:
                resource = resources.find(session, SERVICE, request.uuid)
                if resource is not None and resource.state == resources.CREATING:
                    resource.state = resources.ACTIVE
        return Provisioned(id=request.uuid, config=_config(details))

    def change_plan(self, uuid: str, plan: str) -> dict[str, str] | None:
        new_plan = self._plan(plan)
        self._reconfigure(uuid, new_plan.limits(), plan=new_plan.name)
        return None

    def deprovision(self, uuid: str) -> bool:
        if not instances.UUID_RE.match(uuid):
            return False
        with self.database.transaction() as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is None or resource.state == resources.DELETED:
                return False
            resource.state = resources.DELETING
            kept = resources.details(resource)
        if external.is_external(kept):
            self._external(uuid, kept, "release", external.release)
        else:
            try:
                instances.remove(self.settings, uuid)
            except instances.InstanceError as exc:
                log.error("deprovisioning redis %s: %s", uuid, exc)
                raise ProviderError("Could not stop the Redis instance; try again.", 503) from exc
        with self.database.transaction() as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is not None:
                resource.state = resources.DELETED
                kept = resources.details(resource)
                # The tenant's password goes; `external` stays so the record still says what it was.
                resources.set_details(resource, {key: kept[key] for key in KEPT_AFTER_DELETION if key in kept})
        return True

    # -- grants: an ACL user per OSB binding ----------------------------------------------------

    def grant(self, uuid: str, grant_id: str) -> dict[str, str]:
        """The add-on's config vars with an ACL user of the grant's own (the tenant's rights),
        recorded before it is made; repeating the call gives the same URLs."""
        _check_id(uuid, 404)
        with instances.instance_lock(self.settings, uuid):  # re-entrant: the steps below take it too
            return self._grant_locked(uuid, grant_id)

    def _grant_locked(self, uuid: str, grant_id: str) -> dict[str, str]:
        with self.database.transaction() as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is None or resource.state != resources.ACTIVE:
                raise ProviderError("No such Redis add-on.", 404)
            details = resources.details(resource)
            made = dict(details.get("grants") or {})
            entry = made.get(grant_id) or grants.new_grant()
            if grant_id not in made:
                details["grants"] = {**made, grant_id: entry}
                resources.set_details(resource, details)
        self._change_users(uuid, details, "add a user to", lambda client: grants.set_user(client, entry))
        return _config(details, entry)

    def revoke(self, uuid: str, grant_id: str) -> bool:
        """The grant's user is deleted and its connections closed; then it leaves the record."""
        if not instances.UUID_RE.match(uuid):
            return False
        with instances.instance_lock(self.settings, uuid):
            return self._revoke_locked(uuid, grant_id)

    def _revoke_locked(self, uuid: str, grant_id: str) -> bool:
        found = resources.snapshot(self.database, SERVICE, uuid)
        entry = ((found or {}).get("grants") or {}).get(grant_id)
        if found is None or found.get("state") != resources.ACTIVE or entry is None:
            return False  # none, or deprovisioned: its user went with the server's tenant
        left = {key: value for key, value in found["grants"].items() if key != grant_id}
        details = {key: value for key, value in found.items() if key not in ("state", "plan")}
        self._change_users(uuid, {**details, "grants": left}, "remove a user from",
                           lambda client: grants.delete_user(client, entry["user"]))
        with self.database.transaction() as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is not None:
                kept = resources.details(resource)
                kept["grants"] = {key: value for key, value in (kept.get("grants") or {}).items() if key != grant_id}
                resources.set_details(resource, kept)
        return True

    def _change_users(self, uuid: str, details: dict[str, Any], doing: str,
                      change: Callable[[Any], None]) -> None:
        if external.is_external(details):
            def on_server(server: external.Server) -> None:
                client = external.admin_client(server)
                try:
                    change(client)
                    external.persist(server, client)
                except redis.RedisError as exc:
                    raise instances.InstanceError(f"changing users: {type(exc).__name__}") from exc
                finally:
                    client.close()
            self._external(uuid, details, doing, on_server)
            return
        try:
            instances.change_users(self.settings, uuid, details, change, self.start_timeout)
        except instances.InstanceError as exc:
            log.error("redis %s: %s", uuid, exc)
            raise ProviderError(f"Could not {doing} the Redis instance; try again.", 503) from exc

    # -- beyond the protocol -------------------------------------------------------------------

    def set_maxmemory_policy(self, uuid: str, policy: str) -> None:
        """`redis:maxmemory --policy`: applied to the running server at once, and kept."""
        if policy not in MAXMEMORY_POLICIES:
            raise ProviderError(f"Unknown maxmemory policy {policy!r}; use one of "
                                f"{', '.join(MAXMEMORY_POLICIES)}.", 422)
        self._reconfigure(uuid, {"maxmemory_policy": policy})

    def action(self, uuid: str, name: str, params: dict[str, Any]) -> ActionResult:
        """`maxmemory` `{"policy"}` (what `redis:maxmemory --policy` does) and `info` (the plan
        and the instance's limits, never its passwords)."""
        if name == "maxmemory":
            policy = params.get("policy")
            if not isinstance(policy, str):
                raise ProviderError("Give the policy: one of " + ", ".join(MAXMEMORY_POLICIES) + ".", 422)
            self.set_maxmemory_policy(uuid, policy)
            return ActionResult(message=f"Maxmemory policy set to {policy}.")
        if name == "info":
            record = self.details(uuid)
            if record["state"] != resources.ACTIVE:
                raise ProviderError("No such Redis add-on.", 404)
            plan = self._plan(record["plan"])
            return ActionResult(result={
                "plan": plan.name, "maxmemory_bytes": plan.maxmemory_bytes, "maxclients": plan.max_clients,
                "largest_value_bytes": client_limits(plan.maxmemory_bytes).value_bytes,
                "maxmemory_policy": record.get("maxmemory_policy", DEFAULT_POLICY),
                "persistent": plan.persistent, "host": record.get("host"), "port": record.get("port"),
                "tls_port": record.get("tls_port"), **self._usage(uuid, record)})
        raise ProviderError(f"Redis has no action {name!r}; it has maxmemory and info.", 404)

    def _usage(self, uuid: str, details: dict[str, Any]) -> dict[str, int | None]:
        """Memory used and clients connected now; None for both while the server cannot say (the
        rest of `info` is still worth answering)."""
        try:
            if external.is_external(details):
                return external.usage(self._server_of(details))
            return instances.usage(self.settings, details)
        except (instances.InstanceError, ProviderError) as exc:
            log.warning("redis %s: no usage figures: %s", uuid, exc)
            return {"used_memory_bytes": None, "connected_clients": None}

    def details(self, uuid: str) -> dict[str, Any]:
        """The instance's record (with its passwords): for operators and tests."""
        found = resources.snapshot(self.database, SERVICE, uuid)
        if found is None:
            raise ProviderError("No such Redis add-on.", 404)
        return found

    # -- steps ---------------------------------------------------------------------------------

    def _plan(self, name: str) -> Plan:
        plan = self.plans.get(name)
        if plan is None:
            raise ProviderError(f"Unknown plan {name!r}; plans: {', '.join(self.plans)}.", 422)
        return plan

    def _policy_option(self, options: Mapping[str, str]) -> str:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ProviderError(f"Unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}.", 422)
        policy = options.get("maxmemory_policy", DEFAULT_POLICY)
        if policy not in MAXMEMORY_POLICIES:
            raise ProviderError(f"maxmemory_policy must be one of {', '.join(MAXMEMORY_POLICIES)}.", 422)
        return policy

    def _reserve(self, uuid: str, plan: Plan, policy: str) -> tuple[str, dict[str, Any]]:
        """The record for `uuid`: the one made before, or a new one in state `creating` with a
        port reserved, committed before anything starts."""
        host = self.settings.redis_host
        # The lock also covers choosing a pool server: two add-ons never get the same one.
        with instances.port_lock(self.settings), self.database.transaction() as session:
            existing = resources.find(session, SERVICE, uuid)
            if existing is not None:
                return existing.state, resources.details(existing)
            if session.get(ProviderResource, uuid) is not None:
                raise ProviderError("This id belongs to another add-on.", 422)
            if self.servers:
                server = self._free_server(session)
                details = external.new_details(server, secrets.token_hex(32), plan.limits(), policy)
                resources.record(session, SERVICE, uuid, plan.name, server.location, details)
                return resources.CREATING, details
            port, tls_port = self._free_ports(session, host)
            details = instances.new_details(host, port, plan.limits(), policy, tls_port=tls_port)
            resources.record(session, SERVICE, uuid, plan.name, host, details)
            return resources.CREATING, details

    def _free_server(self, session: Any) -> external.Server:
        """The first configured server holding no live add-on (each holds at most one)."""
        locations = list(self.servers)
        chosen = resources.least_loaded(session, SERVICE, locations)
        if any(resource.location == chosen for resource in resources.live(session, SERVICE)):
            raise ProviderError(f"All {len(locations)} Redis servers are in use; an operator must add one "
                                "to BERTH_REDIS_SERVERS (or another add-on must be removed) first.", 503)
        return self.servers[chosen]

    def _server_of(self, details: dict[str, Any]) -> external.Server:
        location = external.location_of(details["host"], int(details["port"]))
        server = self.servers.get(location)
        if server is None:
            log.error("Redis server %s holds an add-on but is not in BERTH_REDIS_SERVERS", location)
            raise ProviderError("The Redis server of this add-on is not available; try again later.", 503)
        return server

    def _external(self, uuid: str, details: dict[str, Any], doing: str,
                  action: Callable[[external.Server], None]) -> None:
        """Run `action(server)` on the add-on's external server, serialised with every other change
        to the add-on (as local instances are); failures become a 503."""
        server = self._server_of(details)
        try:
            with instances.instance_lock(self.settings, uuid):
                action(server)
        except instances.InstanceError as exc:
            log.error("redis server %s: %s", server.location, exc)
            raise ProviderError(f"Could not {doing} the Redis server; try again later.", 503) from exc

    def _free_ports(self, session: Any, host: str, avoid: tuple[int, ...] = ()) -> tuple[int, int]:
        """A plain and a TLS port on `host` that no record holds and nothing listens on."""
        taken = set(avoid)
        for resource in resources.live(session, SERVICE):
            if resource.location == host:
                kept = resources.details(resource)
                taken.update(int(kept[key]) for key in ("port", "tls_port") if kept.get(key))
        try:
            port = instances.choose_port(host, taken, self.ports)
            return port, instances.choose_port(host, taken | {port}, self.ports)
        except instances.InstanceError as exc:
            raise ProviderError("No free port for another Redis instance on this server.", 503) from exc

    def _start(self, uuid: str, state: str, details: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                instances.start(self.settings, uuid, details, self.start_timeout)
                return details
            except instances.PortInUse as exc:
                # Taken since we reserved it. Until the add-on is active nobody has its URL, so
                # it may move; afterwards the port is part of the app's config and must stay.
                if state != resources.CREATING or attempt == PORT_ATTEMPTS:
                    raise ProviderError("The Redis instance's port is taken by another process.", 503) from exc
                details = self._move_port(uuid)
            except instances.InstanceError as exc:
                log.error("starting redis %s: %s", uuid, exc)
                raise ProviderError("Could not start the Redis instance; try again.", 503) from exc
        raise AssertionError("unreachable")

    def _move_port(self, uuid: str) -> dict[str, Any]:
        with instances.port_lock(self.settings), self.database.transaction() as session:
            resource = resources.find(session, SERVICE, uuid)
            if resource is None or resource.state != resources.CREATING:
                raise ProviderError("The Redis add-on changed while it was being created.", 503)
            details = resources.details(resource)
            held = tuple(int(details[key]) for key in ("port", "tls_port") if details.get(key))
            details["port"], details["tls_port"] = self._free_ports(session, details["host"], avoid=held)
            resources.set_details(resource, details)
            return details

    def _reconfigure(self, uuid: str, changes: dict[str, Any], plan: str | None = None) -> None:
        _check_id(uuid, 404)
        with instances.instance_lock(self.settings, uuid):
            with self.database.session(write=False) as session:
                resource = resources.find(session, SERVICE, uuid)
                if resource is None or resource.state in (resources.DELETING, resources.DELETED):
                    raise ProviderError("No such Redis add-on.", 404)
                details = {**resources.details(resource), **changes}
            try:
                if external.is_external(details):
                    external.resize(self._server_of(details), details)
                else:
                    instances.resize(self.settings, uuid, details, self.start_timeout)
            except instances.TooMuchData as exc:
                raise ProviderError(f"Cannot change to that plan: {exc}. Delete some keys first.", 422) from exc
            except instances.InstanceError as exc:
                log.error("reconfiguring redis %s: %s", uuid, exc)
                raise ProviderError("Could not reconfigure the Redis instance (are all its connections "
                                    "in use?); try again.", 503) from exc
            with self.database.transaction() as session:
                resource = resources.find(session, SERVICE, uuid)
                if resource is not None:
                    resources.set_details(resource, details)
                    if plan is not None:
                        resource.plan = plan


def _config(details: dict[str, Any], grant: dict[str, str] | None = None) -> dict[str, str]:
    """The add-on's config vars (with `grant`'s user and password instead of the tenant's): the
    plain URL, and the TLS one where the server has a TLS port."""
    config = {"REDIS_URL": instances.url(details, secure=not tls.plain_port_open(details), grant=grant)}
    if tls.enabled(details):
        config[tls.CONFIG_VAR] = instances.url(details, secure=True, grant=grant)
    return config


def _check_id(uuid: str, status: int) -> None:
    if not instances.UUID_RE.match(uuid):
        raise ProviderError("Not a valid add-on id.", status)


__all__ = ["OPTIONS", "RedisProvider", "SERVICE"]
