"""The Redis add-on's plans, after Heroku Key-Value Store's (`specs/backends.md` §2.2).

Memory is the instance's `maxmemory`, clients its `maxclients` (Berth's own resize connection
counts against it too). `mini` keeps data in memory only; premium plans append every write to
an AOF file (fsync every second), so a restarted instance comes back with its data.
"""
from __future__ import annotations

from dataclasses import dataclass

from berth.addons.plans import plan_entry

MB = 1024 * 1024

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
                              ("Persistence", "AOF" if self.persistent else "none"), ("Dedicated server", "yes")])


PLANS: dict[str, Plan] = {plan.name: plan for plan in (
    Plan("mini", "Mini", 300, 25, 20, persistent=False, default=True),
    Plan("premium-0", "Premium 0", 1500, 50, 40, persistent=True),
    Plan("premium-1", "Premium 1", 3000, 100, 80, persistent=True),
    Plan("premium-2", "Premium 2", 6000, 250, 200, persistent=True),
)}

__all__ = ["DEFAULT_POLICY", "MAXMEMORY_POLICIES", "MB", "PLANS", "Plan"]
