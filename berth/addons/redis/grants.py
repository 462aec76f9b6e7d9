"""Grants (OSB bindings) on a Redis server: an ACL user each, `berth-grant-<hex>`, with the
tenant's rights (`instances.tenant_rules`) and a password of its own, so unbinding ends that user
alone. Local instances also list them in redis.conf (`instances.render_config`), so a restart keeps
them; here they change on the running server through Berth's admin connection."""
from __future__ import annotations

import secrets
from typing import Any

import redis

from berth.addons.redis import instances


def new_grant() -> dict[str, str]:
    return {"user": instances.GRANT_PREFIX + secrets.token_hex(8), "password": secrets.token_hex(32)}


def set_user(client: "redis.Redis[bytes]", grant: dict[str, str]) -> None:
    """Create (or reset to the tenant's rights) the grant's user. Idempotent."""
    client.execute_command("ACL", "SETUSER", grant["user"], "reset", *instances.tenant_rules(grant["password"]))


def delete_user(client: "redis.Redis[bytes]", user: str) -> None:
    """The user may no longer log in, its connections are closed, then it is gone. Idempotent."""
    if not _exists(client, user):
        return
    client.execute_command("ACL", "SETUSER", user, "reset")  # off, no password: no new login meanwhile
    client.execute_command("CLIENT", "KILL", "USER", user)
    client.execute_command("ACL", "DELUSER", user)


def delete_all(client: "redis.Redis[bytes]") -> None:
    """Every grant's user on the server (a server changing tenants keeps none)."""
    for user in _users(client):
        if user.startswith(instances.GRANT_PREFIX):
            delete_user(client, user)


def _users(client: "redis.Redis[bytes]") -> list[str]:
    names: Any = client.execute_command("ACL", "USERS")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


def _exists(client: "redis.Redis[bytes]", user: str) -> bool:
    return user in _users(client)


__all__ = ["delete_all", "delete_user", "new_grant", "set_user"]
