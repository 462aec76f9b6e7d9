"""Waiting for a server that was just started to serve, and noticing at once when it died
instead: a start returns only when the server answers, or raises saying why it did not."""
from __future__ import annotations

import time
from typing import Callable

__all__ = ["wait_until"]


def wait_until(ready: Callable[[], bool], timeout: float, *, interval: float = 0.1,
               failed: Callable[[], None] | None = None, quickly_for: float = 0.0,
               quick_interval: float = 0.001) -> bool:
    """Ask `ready()` until it says yes (True) or `timeout` seconds pass (False). `failed()`, if
    given, is called after each unready answer and raises when waiting longer is pointless (the
    process exited, the port is taken). The first `quickly_for` seconds poll every
    `quick_interval`: a server that starts in milliseconds is not kept waiting for `interval`."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if ready():
            return True
        if failed is not None:
            failed()
        now = time.monotonic()
        if now >= deadline:
            return False
        time.sleep(quick_interval if now - started < quickly_for else interval)
