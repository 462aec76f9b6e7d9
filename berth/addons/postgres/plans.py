"""The Postgres add-on's plans, after Heroku Postgres's Essential and Standard tiers (`specs/backends.md` §1.3).

Every plan gives the tenant a non-superuser role and its own database (§6.1). On the Essential
plans they live on a shared server; on `standard-0` (dedicated) on a PostgreSQL cluster of the
add-on's own (`dedicated.py`), on its own port. Connections are the role's `CONNECTION LIMIT`;
storage is `pg_database_size`, which `provider.enforce_storage_limits` checks (an empty database
already takes about 7.3 MB of it). A GB here is 1024³ bytes.

Moving between the tiers (shared <-> dedicated) is refused: the data would have to be copied to
another server, which Berth does not do yet (capture a backup and restore it into a new add-on).
"""
from __future__ import annotations

from dataclasses import dataclass

from berth.addons.plans import plan_entry

GB = 1024 ** 3


@dataclass(frozen=True)
class Plan:
    name: str
    human_name: str
    price_cents: int        # per month
    storage_gb: int
    connections: int
    default: bool = False
    dedicated: bool = False  # its own cluster, not a database on a shared server

    @property
    def tier(self) -> str:
        return "dedicated" if self.dedicated else "shared"

    @property
    def storage_bytes(self) -> int:
        return self.storage_gb * GB

    @property
    def description(self) -> str:
        server = "its own dedicated server" if self.dedicated else "a shared server"
        return (f"A PostgreSQL database of up to {self.storage_gb} GB with up to {self.connections} "
                f"connections, on {server}. Over the storage limit, writes are refused until "
                "data is deleted or the plan is upgraded.")

    def manifest_entry(self) -> dict[str, object]:
        return plan_entry(name=self.name, human_name=self.human_name, description=self.description,
                          cents=self.price_cents, default=self.default, features=[
                              ("Storage", f"{self.storage_gb} GB"), ("Connections", str(self.connections)),
                              ("Row limit", "none"), ("Credentials", "owner only"),
                              ("Dedicated server", "yes" if self.dedicated else "no")])


PLANS: dict[str, Plan] = {plan.name: plan for plan in (
    Plan("essential-0", "Essential 0", 500, 1, 20, default=True),
    Plan("essential-1", "Essential 1", 900, 10, 20),
    Plan("essential-2", "Essential 2", 2000, 32, 40),
    Plan("standard-0", "Standard 0", 5000, 64, 120, dedicated=True),
)}

__all__ = ["GB", "PLANS", "Plan"]
