"""The log store's plans: how long lines are kept and how much may arrive per month (after the
common shape of Papertrail-style plans; the figures are Berth's)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LogPlan:
    name: str
    human_name: str
    cents: int
    retention_days: int
    monthly_bytes: int
    default: bool = False


MB = 1024 * 1024
PLANS = (
    LogPlan("free", "Free", 0, retention_days=2, monthly_bytes=50 * MB, default=True),
    LogPlan("basic", "Basic", 700, retention_days=7, monthly_bytes=1024 * MB),
    LogPlan("pro", "Pro", 4900, retention_days=30, monthly_bytes=10 * 1024 * MB),
)
BY_NAME = {plan.name: plan for plan in PLANS}
