"""The log store as a `Provider`: provisioning hands Berth a drain URL (with an ingest secret in its
userinfo) and the app a `LOGS_URL` (search API with its own token); lines arrive through the drain,
are kept per plan retention and monthly volume, and are searched by text, time, source and dyno."""
from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, or_, select

from berth import logplex
from berth.addons import resources
from berth.addons.logging.models import StoredLine
from berth.addons.logging.plans import BY_NAME, PLANS, LogPlan
from berth.addons.plans import plan_entry
from berth.addons.secrets import provider_sso_salt
from berth.broker.partner_api.provider import ProviderError, Provisioned, ProvisionRequest
from berth.config import Settings
from berth.db import Database, utcnow

log = logging.getLogger(__name__)
SERVICE = "logs"
MAX_RESULTS = 1000


@dataclass(frozen=True)
class Query:
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    dyno: str | None = None      # a process (web.1) or a type (web)
    limit: int = 100


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class LogsProvider:
    sso_path = "/sso"

    def __init__(self, database: Database, settings: Settings,
                 plans: dict[str, LogPlan] | None = None) -> None:
        self.database, self.settings = database, settings
        self.plans = plans or BY_NAME

    # ---- the partner API -------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        return {
            "id": SERVICE,
            "name": "Berth Logs",
            "description": "Keeps your app's logs: full-text search over a retention window, by time, "
                           "source and dyno, through an API and a dashboard.",
            "categories": ["Logging"],
            "api": {"config_vars_prefix": "LOGS", "config_vars": ["LOGS_URL"], "regions": ["*"],
                    "requires": ["syslog_drain"], "version": "3"},
            "plans": [plan_entry(name=plan.name, human_name=plan.human_name, cents=plan.cents,
                                 default=plan.default,
                                 description=f"{plan.retention_days} days of search, "
                                             f"{plan.monthly_bytes // (1024 * 1024)} MB a month",
                                 features=[("Search window", f"{plan.retention_days} days"),
                                           ("Volume", f"{plan.monthly_bytes // (1024 * 1024)} MB a month")])
                      for plan in PLANS],
        }

    def provision(self, request: ProvisionRequest) -> Provisioned:
        self._plan(request.plan)
        if request.options:
            raise ProviderError(f"Unknown options: {', '.join(sorted(request.options))}. The logs add-on "
                                "takes none.")
        if not request.log_drain_token:
            raise ProviderError("A log drain token is required (the manifest requires syslog_drain).")
        with self.database.transaction() as session:
            found = resources.find(session, SERVICE, request.uuid)
            if found is not None and found.state == resources.DELETED:
                raise ProviderError("That add-on was removed; it cannot be provisioned again.", 410)
            if found is None:
                found = resources.record(session, SERVICE, request.uuid, request.plan, "local", {
                    "ingest_secret": secrets.token_urlsafe(32), "search_token": secrets.token_urlsafe(32),
                    "month": "", "month_bytes": 0, "dropped": 0})
                found.state = resources.ACTIVE  # nothing to create elsewhere: the lines live here
            details = resources.details(found)
        return Provisioned(id=request.uuid, config={"LOGS_URL": self._url(
            "token", details["search_token"], f"/v1/{request.uuid}")},
            log_drain_url=self._url("drain", details["ingest_secret"], f"/drains/{request.uuid}"),
            message="Your logs will arrive within seconds.")

    def change_plan(self, uuid: str, plan: str) -> dict[str, str] | None:
        self._plan(plan)
        with self.database.transaction() as session:
            found = self._active(session, uuid)
            found.plan = plan
        return None

    def deprovision(self, uuid: str) -> bool:
        with self.database.transaction() as session:
            found = resources.find(session, SERVICE, uuid)
            if found is None or found.state == resources.DELETED:
                return False
            session.execute(delete(StoredLine).where(StoredLine.resource_id == uuid))
            found.state = resources.DELETED
            resources.set_details(found, {})  # the secrets go too: every credential stops at once
        return True

    # ---- what the routes call --------------------------------------------------------------
    def ingest(self, uuid: str, secret: str, drain_token: str, body: bytes) -> int:
        """Keep the drain's frames; returns how many were kept (0 when over the month's volume)."""
        try:
            frames = logplex.parse_body(body, structured_data=False)
        except ValueError as error:
            raise ProviderError(f"Malformed logplex body: {error}.", 400) from None
        with self.database.transaction() as session:
            found = resources.find(session, SERVICE, uuid)
            details = resources.details(found) if found is not None else {}
            if found is None or found.state != resources.ACTIVE or not _same(secret, details["ingest_secret"]):
                raise ProviderError("Invalid credentials.", 401)
            month = utcnow().strftime("%Y-%m")
            if details["month"] != month:
                details.update(month=month, month_bytes=0)
            if details["month_bytes"] + len(body) > self._plan(found.plan).monthly_bytes:
                details["dropped"] += len(frames)  # Logplex would retry a refusal: accept and drop
                resources.set_details(found, details)
                return 0
            details["month_bytes"] += len(body)
            resources.set_details(found, details)
            now = utcnow()
            session.add_all(StoredLine(resource_id=uuid, drain_token=drain_token[:40], received_at=now,
                                       logged_at=frame.timestamp or now, source=frame.app_name[:64],
                                       process=frame.procid[:64], message=frame.message)
                            for frame in frames)
        return len(frames)

    def check_search_token(self, uuid: str, token: str) -> bool:
        with self.database.session(write=False) as session:
            found = resources.find(session, SERVICE, uuid)
            return (found is not None and found.state == resources.ACTIVE
                    and _same(token, resources.details(found)["search_token"]))

    def exists(self, uuid: str) -> bool:
        with self.database.session(write=False) as session:
            found = resources.find(session, SERVICE, uuid)
            return found is not None and found.state == resources.ACTIVE

    def search(self, uuid: str, query: Query) -> list[StoredLine]:
        """The newest `limit` matching lines, oldest first; only within the plan's retention."""
        with self.database.session(write=False) as session:
            found = self._active(session, uuid)
            oldest = utcnow() - timedelta(days=self._plan(found.plan).retention_days)
            conditions = [StoredLine.resource_id == uuid, StoredLine.logged_at >= max(oldest, query.since or oldest)]
            if query.until is not None:
                conditions.append(StoredLine.logged_at <= query.until)
            if query.text:
                escaped = query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                conditions.append(StoredLine.message.ilike(f"%{escaped}%", escape="\\"))
            if query.source:
                conditions.append(StoredLine.source == query.source)
            if query.dyno:
                conditions.append(or_(StoredLine.process == query.dyno,
                                      StoredLine.process.startswith(query.dyno + ".", autoescape=True)))
            newest = list(session.scalars(select(StoredLine).where(*conditions)
                                          .order_by(StoredLine.logged_at.desc(), StoredLine.id.desc())
                                          .limit(max(1, min(query.limit, MAX_RESULTS)))))
            session.expunge_all()
        return newest[::-1]

    def purge(self, now: datetime | None = None) -> int:
        """Delete what is past each resource's retention; returns how many lines went."""
        now = now or utcnow()
        removed = 0
        with self.database.transaction() as session:
            for found in resources.live(session, SERVICE):
                cutoff = now - timedelta(days=self._plan(found.plan).retention_days)
                result = session.execute(delete(StoredLine).where(StoredLine.resource_id == found.id,
                                                                  StoredLine.logged_at < cutoff))
                removed += result.rowcount or 0  # type: ignore[attr-defined]
        return removed

    def sso_salt(self) -> str:
        return provider_sso_salt(self.settings, SERVICE)

    def blueprint(self) -> Any:
        from berth.addons.logging.routes import logs_blueprint
        return logs_blueprint(self)

    # ---- helpers ----------------------------------------------------------------------------
    def _plan(self, name: str) -> LogPlan:
        plan = self.plans.get(name)
        if plan is None:
            raise ProviderError(f"Unknown plan {name!r}; the logs add-on has {', '.join(self.plans)}.")
        return plan

    def _active(self, session: Any, uuid: str) -> Any:
        found = resources.find(session, SERVICE, uuid)
        if found is None or found.state != resources.ACTIVE:
            raise ProviderError("No such log store.", 404)
        return found

    def _url(self, user: str, secret: str, path: str) -> str:
        parts = urlsplit(self.settings.api_url)
        return urlunsplit((parts.scheme, f"{user}:{secret}@{parts.netloc}", f"/providers/{SERVICE}{path}", "", ""))


def parse_time(text: str | None) -> datetime | None:
    """ISO 8601, naive taken as UTC; raises ValueError."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
