"""Add-on operations as a job type: claim one, call the provider, apply its answer.

The call happens outside any transaction, between the claim (its own statement) and the
transaction that applies the answer; then a request waiting on the add-on is woken.
"""
from __future__ import annotations

import logging

from berth.broker import operations, outcomes
from berth.broker.partner_api.client import ProviderAnswer, ProviderClient
from berth.config import Settings
from berth.db import Database
from berth.jobs.wakeup import signal_waiters
from berth.platform.logs import tokens

log = logging.getLogger("berth.worker")


class AddonOperations:
    """The job type of `operations` (berth.jobs.worker.JobType)."""

    name = "addon-operations"

    def __init__(self, database: Database, settings: Settings, client: ProviderClient | None = None) -> None:
        self.database, self.settings = database, settings
        self.client = client or ProviderClient.for_settings(settings)

    def start_up(self) -> None:
        """Abandoned operations run again (idempotent)."""
        if self.database.is_sqlite:  # the only worker: whatever was running is ours, and dead
            released = operations.QUEUE.release_abandoned(self.database)
            if released:
                log.info("re-queued %d operations abandoned by a previous worker", released)

    def sweep(self) -> None:
        with self.database.transaction() as session:
            expired = outcomes.expire_async_provisions(session)
        if expired:
            log.info("%d asynchronous provisions passed their deadline and failed", expired)

    def anything_due(self) -> bool:
        return operations.QUEUE.anything_due(self.database)

    def count_due(self, limit: int) -> int:
        return operations.QUEUE.count_due(self.database, limit)

    def run_one(self) -> bool:
        call = outcomes.claim_call(self.database)
        if call is None:
            return False
        answer = self.call_provider(call)
        with self.database.transaction() as session:
            outcomes.apply_answer(session, self.settings, call, answer)
        signal_waiters(self.settings.data_dir, call.addon_id)  # a request may be waiting for it
        return True

    def call_provider(self, call: outcomes.Call) -> ProviderAnswer:
        if call.kind == operations.PROVISION:
            return self.client.provision(
                call.endpoint, uuid=call.addon_id, name=call.addon_name, plan=call.plan,
                region=call.region, callback_url=f"{self.settings.api_url}/addons/{call.addon_id}",
                options=call.options, oauth_grant=call.oauth_grant, log_drain_token=call.log_drain_token,
                log_input_url=(tokens.input_url(self.settings.api_url, call.log_input_token)
                               if call.log_input_token else None))
        if call.kind == operations.CHANGE_PLAN:
            return self.client.change_plan(call.endpoint, call.resource_id, call.plan)
        return self.client.deprovision(call.endpoint, call.resource_id)
