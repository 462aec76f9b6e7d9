"""Operator-run Redis servers (BERTH_REDIS_SERVERS) as a pool of dedicated nodes.

Modelled on cf-redis-broker's dedicated-node plans (`specs/backends.md` §5.3): each listed server
holds at most one add-on at a time, so every add-on still has a redis-server to itself (shared-server
ACLs leak key names through SCAN, RANDOMKEY and DBSIZE, §7.2). A server is free when no live
resource (`creating`, `active` or `deleting`) is located on it; a deprovision empties it and hands
it back to the pool.

Each entry is an admin URL, `redis://ADMINUSER:PASSWORD@host:port` (Redis ≥ 7.0: ACLs with
pub/sub channel and subcommand rules, CONFIG SET of several parameters at once, and the client
limits of `plans.ClientLimits`, maxmemory-clients included, applied on every provision and plan
change). Berth administers the server as ADMINUSER and gives the server's `default` user to the
tenant (`redis://:PASSWORD@host:port` logs in as `default`), with the commands the local
instances deny (`instances.TENANT_DENIED`) denied here too. That is why the admin user may not be
`default` itself.

A resource's `location` is the server's `host:port` (never the admin URL: no secret in that
column); its encrypted details say `"external": true` so the supervisor leaves it alone (the
operator runs these servers, Berth never starts or stops them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis

from berth.addons.redis import grants, instances

log = logging.getLogger(__name__)

DEFAULT_PORT = 6379
TIMEOUT = 5.0


class ConfigError(ValueError):
    """BERTH_REDIS_SERVERS is malformed (the message never holds a password)."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    username: str
    password: str

    @property
    def location(self) -> str:
        return location_of(self.host, self.port)

    def __repr__(self) -> str:  # the dataclass default would print the password
        return f"Server({self.location}, user={self.username!r})"


def location_of(host: str, port: int) -> str:
    """A resource's `location` on an external server: `host:port` (`[v6]:port`)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_server(url: str) -> Server:
    """One admin URL. Errors name the position of the problem, never the password."""
    parts = urlsplit(url.strip())
    if parts.scheme != "redis":
        raise ConfigError("BERTH_REDIS_SERVERS: each entry must be redis://ADMINUSER:PASSWORD@host:port "
                          f"(got scheme {parts.scheme!r}; rediss:// is not supported yet)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError("BERTH_REDIS_SERVERS: an entry has an invalid port") from None
    host = parts.hostname
    if not host:
        raise ConfigError("BERTH_REDIS_SERVERS: an entry has no host")
    where = f"{host}:{port}"
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not username or not password:
        raise ConfigError(f"BERTH_REDIS_SERVERS: {where} needs an admin user and password "
                          "(redis://ADMINUSER:PASSWORD@host:port)")
    if username == "default":
        raise ConfigError(f"BERTH_REDIS_SERVERS: {where} names the user 'default', but 'default' becomes "
                          "the tenant's user; create an admin user (ACL SETUSER berth-admin on >PASSWORD "
                          "~* &* +@all) and put it in the URL")
    return Server(host=host, port=port, username=username, password=password)


def parse_servers(urls: tuple[str, ...]) -> dict[str, Server]:
    """location -> server, in configured order. The same server twice is a mistake worth saying."""
    servers: dict[str, Server] = {}
    for url in urls:
        server = parse_server(url)
        if server.location in servers:
            raise ConfigError(f"BERTH_REDIS_SERVERS lists {server.location} twice")
        servers[server.location] = server
    return servers


def new_details(server: Server, password: str, limits: dict[str, Any], policy: str) -> dict[str, Any]:
    return {"external": True, "host": server.host, "port": server.port, "password": password,
            "maxmemory_policy": policy, **limits}


def is_external(details: dict[str, Any]) -> bool:
    return bool(details.get("external"))


def admin_client(server: Server) -> "redis.Redis[bytes]":
    return redis.Redis(host=server.host, port=server.port, username=server.username,
                       password=server.password, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                       retry=instances.no_retries())


def usage(server: Server) -> dict[str, int]:
    """What the add-on on `server` uses now (the server holds only it)."""
    client = admin_client(server)
    try:
        memory, clients = client.info("memory"), client.info("clients")
    except redis.RedisError as exc:
        raise _error(server, "read INFO of", exc) from exc
    finally:
        client.close()
    return {"used_memory_bytes": int(memory["used_memory"]), "connected_clients": int(clients["connected_clients"])}


def _tenant_rules(password: str) -> list[str]:
    # `reset` first: whatever a previous tenant or the operator left on `default` is gone.
    return ["reset", *instances.tenant_rules(password)]


def _error(server: Server, doing: str, exc: redis.RedisError) -> instances.InstanceError:
    # redis-py's messages name host and port at most; the admin password never reaches them.
    return instances.InstanceError(f"redis server {server.location}: {doing}: {type(exc).__name__}: {exc}")


def prepare(server: Server, details: dict[str, Any]) -> None:
    """Hand a pool server to a new tenant. Idempotent (a repeat after a crash redoes it all);
    only for a record still `creating`, since it empties the server."""
    client = admin_client(server)
    try:
        # Lock everyone else out first, then drop whoever was logged in as `default` before.
        client.execute_command("ACL", "SETUSER", "default", *_tenant_rules(details["password"]))
        client.execute_command("CLIENT", "KILL", "USER", "default")
        grants.delete_all(client)  # a previous tenant's bindings, left by a crash part-way
        client.execute_command("FLUSHALL")  # a server back from the pool may hold old data
        client.execute_command("CONFIG", "SET", *instances.config_set_args(details))
        persist(server, client)
    except redis.RedisError as exc:
        raise _error(server, "preparing it for a new add-on", exc) from exc
    finally:
        client.close()


def resize(server: Server, details: dict[str, Any]) -> None:
    """CONFIG SET the limits and policy; TooMuchData when more is used than the new maxmemory."""
    client = admin_client(server)
    try:
        used = int(client.info("memory")["used_memory"])
        if used > int(details["maxmemory"]):
            raise instances.TooMuchData(f"the instance holds {used / 1048576:.1f} MB, more than the "
                                        f"{int(details['maxmemory']) / 1048576:g} MB asked for")
        client.execute_command("CONFIG", "SET", *instances.config_set_args(details))
        persist(server, client)
    except redis.RedisError as exc:
        raise _error(server, "reconfiguring it", exc) from exc
    finally:
        client.close()


def release(server: Server) -> None:
    """Take the server back from its tenant: `default` off with no password (its URL stops working
    at once, open connections included), data gone. Idempotent."""
    client = admin_client(server)
    try:
        client.execute_command("ACL", "SETUSER", "default", "reset")  # reset = off, no passwords, -@all
        client.execute_command("CLIENT", "KILL", "USER", "default")
        grants.delete_all(client)  # its bindings' users too
        client.execute_command("FLUSHALL")
        persist(server, client)
    except redis.RedisError as exc:
        raise _error(server, "releasing it", exc) from exc
    finally:
        client.close()


def persist(server: Server, client: "redis.Redis[bytes]") -> None:
    """Best effort: keep the ACL and limits across a restart of the operator's server (ACL SAVE with
    an aclfile, else CONFIG REWRITE with a config file). A server started with neither keeps them
    in memory only; its operator then owns restoring them."""
    try:
        aclfile = client.execute_command("CONFIG", "GET", "aclfile")
        if aclfile and len(aclfile) > 1 and aclfile[1]:
            client.execute_command("ACL", "SAVE")
        client.execute_command("CONFIG", "REWRITE")
    except redis.ResponseError as exc:
        if "without a config file" not in str(exc):
            log.warning("redis server %s: cannot persist its configuration: %s", server.location, exc)


__all__ = ["ConfigError", "Server", "admin_client", "is_external", "location_of", "new_details",
           "parse_server", "parse_servers", "prepare", "release", "resize"]
