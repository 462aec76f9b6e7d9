"""The broker's worker: claims operations, calls providers, applies their answers.

`python -m berth.broker.worker` runs it (`make run` starts one). Several threads each claim
and run operations, so one slow provider does not hold up the others. On PostgreSQL any
number of workers may run; on SQLite, one.
"""
from __future__ import annotations

import logging
import threading
import time

from berth.broker import operations, outcomes
from berth.broker.nudge import NudgeListener, signal_answer
from berth.broker.partner_api.client import ProviderAnswer, ProviderClient
from berth.config import Settings
from berth.db import Database
from berth.platform.logs import tokens
from berth.process import start_process

log = logging.getLogger("berth.worker")
POLL_SECONDS = 1.0
SWEEP_SECONDS = 10.0


class Wakeups:
    """Wakes idle threads, as many as there is work for. Waking all of them on each nudge sent
    every thread racing to claim one operation, and the losers' reads slowed the winner down
    (the GIL, the write lock)."""

    def __init__(self, limit: int) -> None:
        self._condition = threading.Condition()
        self._permits, self._limit = 0, limit

    def signal(self, count: int = 1) -> None:
        with self._condition:
            self._permits = min(self._limit, self._permits + count)
            self._condition.notify(count)

    def wait(self, timeout: float) -> bool:
        """True when woken for work, False when the timeout passed."""
        with self._condition:
            if self._permits == 0:
                self._condition.wait(timeout)
            if self._permits == 0:
                return False
            self._permits -= 1
            return True


class Worker:
    def __init__(self, database: Database, settings: Settings, client: ProviderClient | None = None) -> None:
        self.database, self.settings = database, settings
        self.client = client or ProviderClient.for_settings(settings)
        self.wakeups = Wakeups(max(1, settings.worker_threads))

    def start_up(self) -> None:
        """Finish or roll back what a crash left: abandoned operations run again (idempotent)."""
        if self.database.is_sqlite:  # the only worker: whatever was running is ours, and dead
            released = operations.release_abandoned(self.database)
            if released:
                log.info("re-queued %d operations abandoned by a previous worker", released)
        self.sweep()

    def sweep(self) -> None:
        with self.database.transaction() as session:
            expired = outcomes.expire_async_provisions(session)
        if expired:
            log.info("%d asynchronous provisions passed their deadline and failed", expired)

    def run_one(self, *, look_first: bool = True) -> bool:
        """Claim and run one due operation. False when there was none.

        Claiming takes the write lock; a thread woken for work skips the look before it,
        which would only delay the claim."""
        if look_first and not operations.anything_due(self.database):
            return False
        call = outcomes.claim_call(self.database)
        if call is None:
            return False
        answer = self._call(call)
        with self.database.transaction() as session:
            outcomes.apply_answer(session, self.settings, call, answer)
        signal_answer(self.settings.data_dir, call.addon_id)  # a request may be waiting for it
        return True

    def drain(self, limit: int = 1000) -> int:
        """Run operations while any is due, at most `limit` (tests drive the broker with this)."""
        count = 0
        while count < limit and self.run_one():
            count += 1
        return count

    def _call(self, call: outcomes.Call) -> ProviderAnswer:
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

    def serve(self, stop: threading.Event) -> None:
        self.start_up()
        threads = [threading.Thread(target=self._loop, args=(stop,), name=f"worker-{i}", daemon=True)
                   for i in range(max(1, self.settings.worker_threads))]
        for thread in threads:
            thread.start()
        listener = NudgeListener(self.settings.data_dir)
        last_sweep = time.monotonic()
        try:
            while not stop.is_set():
                nudges = listener.wait(POLL_SECONDS)  # one per operation queued
                if time.monotonic() - last_sweep > SWEEP_SECONDS:
                    self.sweep()
                    last_sweep = time.monotonic()
                if not nudges:  # a poll tick: retries come due, and nudges can be lost
                    nudges = operations.count_due(self.database, limit=self.settings.worker_threads)
                self.wakeups.signal(nudges)
        finally:
            listener.close()
            for thread in threads:
                thread.join(timeout=5)

    def _loop(self, stop: threading.Event) -> None:
        woken = False
        while not stop.is_set():
            try:
                busy = self.run_one(look_first=not woken)
            except Exception:  # one bad operation must not stop the worker
                log.exception("operation failed unexpectedly; it will be claimed again")
                busy = False
            woken = False
            if not busy:
                woken = self.wakeups.wait(POLL_SECONDS)


def main() -> None:
    settings, database, stop = start_process()
    log.info("worker started (%d threads)", settings.worker_threads)
    Worker(database, settings).serve(stop)


if __name__ == "__main__":
    main()
