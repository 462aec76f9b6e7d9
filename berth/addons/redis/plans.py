"""The Redis add-on's plans, after Heroku Key-Value Store's (`specs/backends.md` §2.2).

Memory is the instance's `maxmemory`, clients its `maxclients` (Berth's own resize connection
counts against it too). `mini` keeps data in memory only; premium plans append every write to
an AOF file (fsync every second), so a restarted instance comes back with its data.
"""
from __future__ import annotations

from dataclasses import dataclass

from berth.addons.plans import plan_entry

MB = 1024 * 1024
# Redis refuses a proto-max-bulk-len or client-query-buffer-limit below 1 MiB.
REDIS_MIN_BUFFER = MB

# What `heroku redis:maxmemory --policy` accepts; noeviction is the default.
MAXMEMORY_POLICIES = ("noeviction", "allkeys-lfu", "volatile-lfu", "allkeys-lru", "volatile-lru",
                      "allkeys-random", "volatile-random", "volatile-ttl")
DEFAULT_POLICY = "noeviction"


@dataclass(frozen=True)
class Plan:
    name: str
    human_name: str
    price_cents: int          # per month
    memory_mb: float          # maxmemory in MiB (a float so tests can make a tiny plan)
    max_clients: int
    persistent: bool          # AOF (appendonly yes, appendfsync everysec)
    default: bool = False

    @property
    def maxmemory_bytes(self) -> int:
        return int(self.memory_mb * MB)

    @property
    def description(self) -> str:
        persistence = "AOF persistence (fsync every second)" if self.persistent else "no persistence"
        return (f"A dedicated Redis server with {self.memory_mb:g} MB of memory, up to "
                f"{self.max_clients} connections and {persistence}.")

    def limits(self) -> dict[str, int | bool]:
        """What an instance is configured with (kept in its record, so restarts need no plan)."""
        return {"maxmemory": self.maxmemory_bytes, "maxclients": self.max_clients,
                "appendonly": self.persistent}

    def manifest_entry(self) -> dict[str, object]:
        return plan_entry(name=self.name, human_name=self.human_name, description=self.description,
                          cents=self.price_cents, default=self.default, features=[
                              ("Memory", f"{self.memory_mb:g} MB"), ("Connections", str(self.max_clients)),
                              ("Largest value", f"{client_limits(self.maxmemory_bytes).value_bytes / MB:g} MB"),
                              ("Persistence", "AOF" if self.persistent else "none"), ("Dedicated server", "yes")])


@dataclass(frozen=True)
class ClientLimits:
    """What Redis lets its clients hold, beside the data `maxmemory` caps.

    Without these a client that declares a huge value (`$500000000`) and streams it without ever
    finishing, queues writes in a MULTI it never EXECs, or asks for replies it never reads makes
    the server buffer up to 1 GB per connection whatever the plan (Redis's defaults). The
    arithmetic, with M = maxmemory and C = maxclients:

    - a value (one bulk argument, or a string grown by APPEND/SETRANGE) is at most V = M / 8,
      and never under Redis's floor of 1 MiB (`proto-max-bulk-len`);
    - a client's pending input, the command being read and a MULTI queue included, is at most 2V
      (`client-query-buffer-limit`), room for one maximal value with its command;
    - a client's unread replies are at most 2V, in every client class (`client-output-buffer-limit`
      hard limits; past it Redis disconnects the client), room to read one maximal value;

    so C clients each at their limits hold C × 4V = C × M / 2, below C × M. Tighter still, every
    client's buffers together (pub/sub and WATCH state too) are held to A = max(M, 4V)
    (`maxmemory-clients`: past it Redis disconnects the biggest clients first; the tenant may not
    opt out with CLIENT NO-EVICT). So the server holds at most M + A + a fixed overhead (the
    binary, allocator arenas, the replication backlog).
    """
    value_bytes: int
    input_bytes: int
    output_bytes: int
    all_clients_bytes: int

    def config(self) -> dict[str, str]:
        """The Redis settings, as redis.conf lines and CONFIG SET take them."""
        output = f"{self.output_bytes} 0 0"  # hard limit only: a soft limit of 0 is off
        return {"proto-max-bulk-len": str(self.value_bytes),
                "client-query-buffer-limit": str(self.input_bytes),
                "client-output-buffer-limit": f"normal {output} replica {output} pubsub {output}",
                "maxmemory-clients": str(self.all_clients_bytes)}


def client_limits(maxmemory: int) -> ClientLimits:
    """The client limits for an instance of this maxmemory (ClientLimits explains the arithmetic;
    C × 4V < C × M holds for any maxclients). Derived, never stored: records made before these
    limits existed get them too."""
    value = max(REDIS_MIN_BUFFER, maxmemory // 8)
    return ClientLimits(value_bytes=value, input_bytes=2 * value, output_bytes=2 * value,
                        all_clients_bytes=max(maxmemory, 4 * value))


PLANS: dict[str, Plan] = {plan.name: plan for plan in (
    Plan("mini", "Mini", 300, 25, 20, persistent=False, default=True),
    Plan("premium-0", "Premium 0", 1500, 50, 40, persistent=True),
    Plan("premium-1", "Premium 1", 3000, 100, 80, persistent=True),
    Plan("premium-2", "Premium 2", 6000, 250, 200, persistent=True),
)}

__all__ = ["ClientLimits", "DEFAULT_POLICY", "MAXMEMORY_POLICIES", "MB", "PLANS", "Plan", "client_limits"]
