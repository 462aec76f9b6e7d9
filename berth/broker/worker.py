"""The broker's worker: claims operations, calls providers, applies their answers.

`python -m berth.broker.worker` runs it (`make run` starts one). Several threads each claim
and run operations, so one slow provider does not hold up the others. On PostgreSQL any
number of workers may run; on SQLite, one.
"""
from __future__ import annotations

import logging
import signal
import threading
import time

from berth import crypto
from berth.broker import operations, provisioning
from berth.broker.nudge import NudgeListener
from berth.broker.partner_api.client import ProviderAnswer, ProviderClient
from berth.config import Settings, load_settings
from berth.db import Database

log = logging.getLogger("berth.worker")
POLL_SECONDS = 1.0
SWEEP_SECONDS = 10.0


class Worker:
    def __init__(self, database: Database, settings: Settings, client: ProviderClient | None = None) -> None:
        self.database, self.settings = database, settings
        self.client = client or ProviderClient(read_timeout=settings.provider_timeout_seconds)
        self.wake = threading.Event()

    def start_up(self) -> None:
        """Finish or roll back what a crash left: abandoned operations run again (idempotent)."""
        if self.database.is_sqlite:  # the only worker: whatever was running is ours, and dead
            released = operations.release_abandoned(self.database)
            if released:
                log.info("re-queued %d operations abandoned by a previous worker", released)
        self.sweep()

    def sweep(self) -> None:
        with self.database.transaction() as session:
            expired = provisioning.expire_async_provisions(session)
        if expired:
            log.info("%d asynchronous provisions passed their deadline and failed", expired)

    def run_one(self) -> bool:
        """Claim and run one due operation. False when there was none."""
        operation_id = operations.claim_next(self.database)
        if operation_id is None:
            return False
        with self.database.transaction() as session:
            call = provisioning.prepare_call(session, operation_id)
        if call is None:
            return True
        answer = self._call(call)
        with self.database.transaction() as session:
            provisioning.apply_answer(session, self.settings, operation_id, answer)
        return True

    def drain(self, limit: int = 1000) -> int:
        """Run operations while any is due, at most `limit` (tests drive the broker with this)."""
        count = 0
        while count < limit and self.run_one():
            count += 1
        return count

    def _call(self, call: provisioning.Call) -> ProviderAnswer:
        if call.kind == operations.PROVISION:
            return self.client.provision(
                call.endpoint, uuid=call.addon_id, name=call.addon_name, plan=call.plan,
                region=call.region, callback_url=f"{self.settings.api_url}/addons/{call.addon_id}",
                options=call.options, oauth_grant=call.oauth_grant)
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
                if listener.wait(POLL_SECONDS):
                    self.wake.set()
                if time.monotonic() - last_sweep > SWEEP_SECONDS:
                    self.sweep()
                    last_sweep = time.monotonic()
                self.wake.set()  # a poll tick: due retries get picked up too
        finally:
            listener.close()
            for thread in threads:
                thread.join(timeout=5)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.run_one()
            except Exception:  # one bad operation must not stop the worker
                log.exception("operation failed unexpectedly; it will be claimed again")
                busy = False
            if not busy:
                self.wake.wait(POLL_SECONDS)
                self.wake.clear()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    crypto.configure(crypto.load_or_create_keys(settings.secret_keys, settings.data_dir))
    database = Database(settings.database_url)
    database.migrate(settings.data_dir)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("worker started (%d threads)", settings.worker_threads)
    Worker(database, settings).serve(stop)


if __name__ == "__main__":
    main()
