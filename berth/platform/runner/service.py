"""The runner's loop: each round reads what every app wants and what the backend runs, plans the
steps (plan.py) and carries them out; then the `dynos` table and the router follow.

Rounds come every POLL_SECONDS and at once when nudged (a release, a scaling, a user's restart).
Stopping takes up to a dyno's grace (30 s), so each stop runs on a thread of its own while rounds go
on; a dyno is routed away from (nginx reloaded, `apply` returns once the new table serves) before it
is signalled, so a request is never sent to a dyno that is going away. Starting copies a slug, so
starts run a few at a time, also beside the rounds: a dyno that is up is routed at the next round,
not once the last of a batch of starts has returned (a scale to 10 routes its first dynos early)."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Mapping, Protocol

from berth.config import Settings
from berth.db import Database
from berth.jobs.wakeup import RunnerListener, nudge_runner
from berth.platform.dynos.backend import DynoBackend, DynoError, DynoStatus
from berth.platform.logs.app_log import AppLog
from berth.platform.router.table import Dyno as RoutedDyno
from berth.platform.runner import records
from berth.platform.runner.crashes import CrashBook
from berth.platform.runner.desired import AppWants, wanted
from berth.platform.runner.ownership import Ownership, SoleOwnership
from berth.platform.runner.plan import Remove, Start, Stop, plan_app

log = logging.getLogger("berth.runner")
POLL_SECONDS = 1.0
START_THREADS = 4
REMOVE_WAIT_SECONDS = 5.0
DRAIN_SECONDS = 10.0  # a long request or a websocket should not hold a scale-down for ever


class Forwarder(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...


class Router(Protocol):
    def route(self) -> None: ...

    def drain(self, timeout: float) -> bool: ...


Forward = Callable[[DynoStatus], Forwarder]


class Runner:
    def __init__(self, database: Database, settings: Settings, backend: DynoBackend, *,
                 forward: Forward | None = None, crash_base: float = 20.0, crash_cap: float = 1200.0,
                 boot_timeout: float | None = None, ownership: Ownership | None = None) -> None:
        self.database, self.settings, self.backend = database, settings, backend
        # Which apps are this runner's to reconcile (several runners share the control plane).
        self.ownership: Ownership = ownership or SoleOwnership()
        self.forward, self.boot_timeout = forward, boot_timeout
        self.router: Router | None = None
        self.crashes = CrashBook(crash_base, crash_cap)
        self.facts = records.known_facts(database)
        self.observed: list[DynoStatus] = []
        self.wants: dict[str, AppWants] = {}
        self._stopping: dict[str, threading.Thread] = {}
        # A forwarder starts two threads, which on a busy host took ~20 ms each to be scheduled: made
        # on a thread of their own, so that ten new dynos do not hold up the round that routes them.
        self._forwarders: dict[str, Future[Forwarder | None]] = {}
        self._forwarding = ThreadPoolExecutor(1, thread_name_prefix="dyno-forward")
        self._lock = threading.Lock()
        self._starts = ThreadPoolExecutor(START_THREADS, thread_name_prefix="dyno-start")
        self._starting: set[tuple[str, str, int]] = set()  # starts submitted and not yet returned
        self._ends = ThreadPoolExecutor(2, thread_name_prefix="dyno-remove")
        self._removing: set[str] = set()  # removals submitted and not yet done
        self._configs: dict[str, Mapping[str, str]] = {}  # release id → config, for desired.wanted
        # A start the backend refused (a slug it cannot unpack, say) is tried again after a cool-off
        # like a crash's, not every round: (app, name, release) → when.
        self._held: dict[tuple[str, str, int], float] = {}

    # -- what the router asks ---------------------------------------------------------------------

    def dynos_of(self, app_id: str) -> tuple[tuple[RoutedDyno, ...], bool]:
        """The app's up web dynos (not those being stopped), and whether its web dynos crashed."""
        with self._lock:
            observed, stopping, wants = list(self.observed), set(self._stopping), self.wants.get(app_id)
        web = [status for status in observed if status.app_id == app_id and status.name.startswith("web.")]
        up = tuple(RoutedDyno(status.name, status.address) for status in web
                   if status.state == "up" and status.address and status.id not in stopping)
        # H10 rather than H14: web is wanted, and what there is crashed or is starting again after a crash.
        crashed = not up and wants is not None and wants.wants_web and any(
            status.state == "crashed" or self.crashes.crashed_before(app_id, status.name, status.release_version)
            for status in web)
        return up, crashed

    # -- rounds ----------------------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        try:
            run_rounds(self.round, self.settings.data_dir, stop)
        finally:
            self.ownership.release()
            self._starts.shutdown(wait=True)
            self._ends.shutdown(wait=True)
            self._forwarding.shutdown(wait=True)
            for pending in list(self._forwarders.values()):
                forwarder = _made(pending)
                if forwarder is not None:
                    forwarder.close()

    def round(self) -> None:
        self.ownership.refresh()
        owns = self.ownership.owns
        wants = {app_id: want for app_id, want in wanted(self.database, self._configs).items() if owns(app_id)}
        requests = records.take_requests(self.database, owns)
        local = self.backend.list()
        with self._lock:  # every dyno this backend shows is routed, whoever owns its app now
            self.wants, self.observed = wants, local
            stopping = set(self._stopping)
        observed = [status for status in local if owns(status.app_id)]
        requested = {status.id for status in observed for request in requests if request.matches(status)}
        now = time.time()
        steps = []
        for app_id in sorted(set(wants) | {status.app_id for status in observed} | self._strays(local)):
            app_wants = wants.get(app_id) or AppWants(app_id, "", None, ())
            mine = [status for status in local if status.app_id == app_id]
            steps.extend(plan_app(app_wants, mine, stopping=stopping, requested=requested, crashes=self.crashes,
                                  now=now))
        for app_id in {status.app_id for status in observed} - set(wants):
            self.crashes.forget(app_id)
        if self.ownership.valid():  # a runner whose leases may have lapsed acts on nothing
            self._carry_out(steps)
        self._record_and_route(None if steps else local)

    def _strays(self, local: list[DynoStatus]) -> set[str]:
        """Apps with dynos on this machine that another runner owns now (its shard moved there): with a
        machine-local backend the owner runs them on its own machine, so they stop here."""
        if not getattr(self.backend, "machine_local", False) or not self.ownership.valid():
            return set()
        return {status.app_id for status in local if not self.ownership.owns(status.app_id)}

    def _carry_out(self, steps: list) -> None:
        stops = [step for step in steps if isinstance(step, Stop)]
        if stops:
            with self._lock:
                for step in stops:
                    self._stopping[step.status.id] = threading.current_thread()  # placeholder until started
            self._route()  # away from them first: nginx serves the new table before they are signalled
            for step in stops:
                self._stop_later(step)
        with self._lock:
            removals = [step.status for step in steps if isinstance(step, Remove) and step.status.id not in self._removing]
            self._removing.update(status.id for status in removals)
        for status in removals:  # waits for the dyno's last lines to reach the log: not in the round
            self._ends.submit(self._remove, status)
        now = time.time()
        with self._lock:
            starts = [step for step in steps if isinstance(step, Start)
                      and self._held.get(_start_key(step), 0.0) <= now and _start_key(step) not in self._starting]
            self._starting.update(_start_key(step) for step in starts)
        for step in starts:
            self._starts.submit(self._start_then_nudge, step)

    def _start_then_nudge(self, step: Start) -> None:
        try:
            self._start(step)
        except Exception:  # not the backend's refusal (that is held in _start): tried again next poll, not at once
            log.exception("starting %s of app %s failed", step.wanted.name, step.wanted.app_id)
            with self._lock:
                self._held[_start_key(step)] = time.time() + POLL_SECONDS
        finally:
            with self._lock:
                self._starting.discard(_start_key(step))
                last = not self._starting
            # A round records the started dynos (and the next start, if one failed): once the last start
            # of a batch has returned, not after each (a round per start took CPU from ten dynos booting;
            # each dyno's keeper wakes the runner itself once it is up).
            if last:
                nudge_runner(self.settings.data_dir)

    def _start(self, step: Start) -> None:
        want = step.wanted
        if not self.ownership.owns(want.app_id):  # its lease lapsed or moved since the round planned it
            return
        app_log = AppLog(self.database, want.app_id, want.name)
        if step.after_crash:
            app_log.line("State changed from crashed to starting", source="heroku")
        try:
            status = self.backend.start(want.spec(self.boot_timeout))
        except DynoError as exc:
            now = time.time()
            retry_at = self.crashes.restart_at(want.app_id, want.name, want.release_version, f"start@{now}", now, now)
            with self._lock:
                self._held[_start_key(step)] = retry_at
            log.warning("could not start %s of app %s: %s", want.name, want.app_id, exc)
            app_log.line(f"Error R99 (Platform error) -> the dyno could not be started: {exc}. Berth tries again "
                         f"in {max(0.0, retry_at - now):.0f} s; deploying again may help.", source="heroku")
            app_log.flush()
            return
        with self._lock:
            self._held.pop(_start_key(step), None)
        app_log.flush()
        with self._lock:
            self.facts[status.id] = records.DynoFacts(want.command, want.size, want.release_id)

    def _stop_later(self, step: Stop) -> None:
        status = step.status
        app_log = AppLog(self.database, status.app_id, status.name)
        if step.why == "restarted":
            app_log.line("Restarting", source="heroku")
        app_log.flush()

        def stop() -> None:
            try:
                # No nginx worker of an earlier table may still send it a request (a kept-alive client
                # connection on an old worker routes by the old table) when the dyno is signalled.
                if self.router is not None and not self.router.drain(DRAIN_SECONDS):
                    log.warning("nginx workers of an earlier routing table still run after %.0f s; stopping %s "
                                "anyway", DRAIN_SECONDS, status.name)
                self.backend.stop(status.id)
            except DynoError:
                log.exception("could not stop dyno %s (%s)", status.id, status.name)
            finally:
                with self._lock:
                    self._stopping.pop(status.id, None)

        thread = threading.Thread(target=stop, name=f"dyno-stop-{status.name}", daemon=True)
        with self._lock:
            self._stopping[status.id] = thread
        thread.start()

    def _remove(self, status: DynoStatus) -> None:
        try:
            with self._lock:
                pending = self._forwarders.pop(status.id, None)
            forwarder = _made(pending) if pending is not None else None  # one being made is waited for
            if forwarder is not None:
                forwarder.wait(REMOVE_WAIT_SECONDS)  # it ended: its last lines ("Process exited …") reach the log
                forwarder.close()
            try:
                self.backend.remove(status.id)
            except DynoError:
                log.exception("could not remove dyno %s (%s)", status.id, status.name)
            with self._lock:
                self.facts.pop(status.id, None)
        finally:
            with self._lock:
                self._removing.discard(status.id)

    def _record_and_route(self, observed: list[DynoStatus] | None = None) -> None:
        """Route by what the backend runs, then record it (the table first: a dyno that came up is
        routed without waiting for the database). `observed`: the round's own look, when it changed
        nothing since."""
        if observed is None:
            observed = self.backend.list()
        with self._lock:
            self.observed = observed
            facts = dict(self.facts)
            starting = set(self._starting)
        # A dyno whose start has not returned yet has no facts (command, size) here: recorded next round.
        recordable = [status for status in observed if status.id in facts
                      or (status.app_id, status.name, status.release_version) not in starting]
        try:
            self._route()
        finally:  # a router that refused the table still leaves the dynos recorded
            if self.ownership.valid():  # rows of others' apps are their runners' to write
                records.sync(self.database, [status for status in recordable if self.ownership.owns(status.app_id)],
                             facts, self.ownership.owns)
        if self.forward is not None:
            with self._lock:  # not for a dyno being removed: its forwarder has finished
                for status in observed:
                    if status.id not in self._forwarders and status.id not in self._removing:
                        self._forwarders[status.id] = self._forwarding.submit(self._make_forwarder, status)

    def _make_forwarder(self, status: DynoStatus) -> Forwarder | None:
        assert self.forward is not None
        try:
            return self.forward(status)
        except Exception:  # removed meanwhile, a database away: a later round makes it again
            log.exception("could not follow the output of dyno %s (%s) into its app's log; trying again next round",
                          status.id, status.name)
            with self._lock:
                self._forwarders.pop(status.id, None)
            return None

    def _route(self) -> None:
        if self.router is not None:
            self.router.route()

    def wait_for_stops(self, timeout: float = 60.0) -> None:
        """For an orderly exit and for tests: until every stop under way has ended."""
        deadline = time.monotonic() + timeout
        for thread in list(self._stopping.values()):
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


def _made(pending: "Future[Forwarder | None]") -> Forwarder | None:
    """The forwarder, once made; None when making it failed (_make_forwarder logged why)."""
    try:
        return pending.result()
    except Exception:  # the executor shut down before it ran
        return None


def _start_key(step: Start) -> tuple[str, str, int]:
    return step.wanted.app_id, step.wanted.name, step.wanted.release_version


def run_rounds(round: Callable[[], None], data_dir: Path, stop: threading.Event) -> None:
    """A runner's loop, whatever its backend: a round every POLL_SECONDS and at once when nudged;
    a round that fails (a database or backend away) is logged and the next one tries again."""
    listener = RunnerListener(data_dir)
    try:
        while not stop.is_set():
            try:
                round()
            except Exception:
                log.exception("runner round failed; retrying")
            listener.wait(POLL_SECONDS)
    finally:
        listener.close()
