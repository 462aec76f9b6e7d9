"""The rendezvous host's loop: start detached one-offs as they are created, carry out stop
requests and sweep rows nothing runs, woken by `nudge_rendezvous` and polling meanwhile."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from berth.jobs.wakeup import RendezvousListener, nudge_rendezvous
from berth.platform.rendezvous.host import DatabaseTickets

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0   # at most this long between a missed nudge and its detached dyno's start
SWEEP_SECONDS = 5.0
SHUTDOWN_GRACE = 10.0  # `make run` waits 15 s before it kills a process


class OneOffHost:
    def __init__(self, tickets: DatabaseTickets, data_dir: Path, *, poll_seconds: float = POLL_SECONDS,
                 sweep_seconds: float = SWEEP_SECONDS) -> None:
        self.tickets, self.data_dir = tickets, data_dir
        self.poll_seconds, self.sweep_seconds = poll_seconds, sweep_seconds
        self._swept = float("-inf")

    def serve(self, stop: threading.Event) -> None:
        listener = RendezvousListener(self.data_dir)  # bound before the first look: no nudge is lost
        waker = threading.Thread(target=self._wake_on, args=(stop,), daemon=True, name="rendezvous-stop")
        waker.start()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - a database hiccup: log it, try again next round
                    log.exception("rendezvous host round failed")
                listener.wait(self.poll_seconds)
        finally:
            listener.close()
            self.tickets.stop_all(SHUTDOWN_GRACE)

    def _wake_on(self, stop: threading.Event) -> None:
        """A stop request ends the loop's wait at once, not at its next poll."""
        stop.wait()
        nudge_rendezvous(self.data_dir)

    def tick(self) -> None:
        while self.tickets.start_next_detached():
            pass
        for name in self.tickets.carry_out_stops():
            log.info("stopping %s on request", name)
        if time.monotonic() - self._swept >= self.sweep_seconds:
            self._swept = time.monotonic()
            self.tickets.sweep()
