"""The Kafka add-on's plans, after Heroku's multi-tenant Basic plans (`specs/backends.md` §3.2).

Quotas are the tenant principal's `producer_byte_rate` / `consumer_byte_rate` (bytes per second,
per broker; kB = 1024 bytes, so basic-0 is 65536 / 262144 as in §8.3). `max_partitions` counts
the partitions of all the add-on's topics together. Storage is bounded at topic creation: every
partition gets `retention.bytes` = capacity / max_partitions, so the add-on's topics can never
hold more than its capacity (Kafka has no per-tenant storage quota, §8.1).

Topic rules, as on Heroku Basic: retention is required (no compaction-only topics), at least
24 hours and at most the plan's maximum (Heroku publishes no maximum: Berth's are 7, 14 and 28
days); 8 partitions by default; the partition count is fixed after creation. Prices (cents a
month) are Berth's own: the spec publishes none.
"""
from __future__ import annotations

from dataclasses import dataclass

KB = 1024
GB = 1024 ** 3
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
MIN_RETENTION_MS = DAY_MS
DEFAULT_RETENTION_MS = DAY_MS
DEFAULT_PARTITIONS = 8


@dataclass(frozen=True)
class Plan:
    name: str
    human_name: str
    price_cents: int           # per month
    produce_kb_per_s: int
    consume_kb_per_s: int
    capacity_gb: int
    max_partitions: int
    max_retention_ms: int
    default: bool = False

    @property
    def producer_byte_rate(self) -> int:
        return self.produce_kb_per_s * KB

    @property
    def consumer_byte_rate(self) -> int:
        return self.consume_kb_per_s * KB

    @property
    def capacity_bytes(self) -> int:
        return self.capacity_gb * GB

    @property
    def retention_bytes_per_partition(self) -> int:
        return self.capacity_bytes // self.max_partitions

    @property
    def description(self) -> str:
        return (f"A prefix of topics and consumer groups on a shared Kafka cluster: produce "
                f"{self.produce_kb_per_s} kB/s, consume {self.consume_kb_per_s} kB/s, "
                f"{self.capacity_gb} GB, up to {self.max_partitions} partitions, retention "
                f"1 to {self.max_retention_ms // DAY_MS} days.")

    def limits(self) -> dict[str, int]:
        """What an add-on on this plan is held to (kept in its record)."""
        return {"producer_byte_rate": self.producer_byte_rate, "consumer_byte_rate": self.consumer_byte_rate,
                "max_partitions": self.max_partitions, "min_retention_ms": MIN_RETENTION_MS,
                "max_retention_ms": self.max_retention_ms,
                "retention_bytes": self.retention_bytes_per_partition}

    def manifest_entry(self) -> dict[str, object]:
        return {
            "name": self.name,
            "human_name": self.human_name,
            "description": self.description,
            "price": {"cents": self.price_cents, "unit": "month"},
            "default": self.default,
            "features": [
                {"name": "Produce quota", "value": f"{self.produce_kb_per_s} kB/s"},
                {"name": "Consume quota", "value": f"{self.consume_kb_per_s} kB/s"},
                {"name": "Capacity", "value": f"{self.capacity_gb} GB"},
                {"name": "Max partitions", "value": str(self.max_partitions)},
                {"name": "Max retention", "value": f"{self.max_retention_ms // DAY_MS} days"},
                {"name": "Multi-tenant", "value": "yes"},
            ],
        }


PLANS: dict[str, Plan] = {plan.name: plan for plan in (
    Plan("basic-0", "Basic 0", 10000, 64, 256, 4, 240, 7 * DAY_MS, default=True),
    Plan("basic-1", "Basic 1", 17500, 512, 2048, 32, 480, 14 * DAY_MS),
    Plan("basic-2", "Basic 2", 32500, 4096, 16384, 64, 960, 28 * DAY_MS),
)}
DEFAULT_PLAN = next(plan for plan in PLANS.values() if plan.default)

__all__ = ["DAY_MS", "DEFAULT_PARTITIONS", "DEFAULT_PLAN", "DEFAULT_RETENTION_MS", "HOUR_MS",
           "MIN_RETENTION_MS", "PLANS", "Plan"]
