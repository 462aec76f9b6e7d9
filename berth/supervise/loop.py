"""The watch loop of a supervisor process: named checks run in rounds, each at its own pace,
one failing never keeping the others from running, until a stop event is set; and the
"restart what died" and "stop them all" passes over a set of servers."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

__all__ = ["Every", "restart_stopped", "run_each", "run_until_stopped", "stop_each"]

Task = tuple[str, Callable[[], object]]


@dataclass(frozen=True)
class Every:
    """Run `action` every `seconds` (the first time at once)."""
    seconds: float
    action: Callable[[], object]


def run_each(tasks: Iterable[Task], log: logging.Logger, failure: str) -> None:
    """Run every task; one raising is logged with its traceback (`failure` % its name) and the
    rest still run."""
    for name, task in tasks:
        try:
            task()
        except Exception:  # one server failing must not stop the others being looked after
            log.exception(failure, name)


def run_until_stopped(stop: threading.Event, rounds: Sequence[Every]) -> None:
    """Run each round when it is due, until `stop` is set; sleep (woken by `stop`) in between."""
    last: list[float | None] = [None] * len(rounds)
    tick = min(each.seconds for each in rounds)
    while not stop.is_set():
        for index, each in enumerate(rounds):
            previous = last[index]
            if previous is None or time.monotonic() - previous >= each.seconds:
                each.action()
                last[index] = time.monotonic()
        stop.wait(tick)


def restart_stopped(names: Iterable[str], *, running: Callable[[str], bool], start: Callable[[str], bool],
                    errors: tuple[type[BaseException], ...], what: str, log: logging.Logger) -> list[str]:
    """Start each of `names` that is not `running`; `start` returns whether it started one (not
    when the server is no longer wanted). The names restarted; a failure is logged as an error
    and left for the next pass."""
    restarted = []
    for name in names:
        try:
            if running(name):
                continue
            if start(name):
                log.warning("%s %s had stopped; restarted", what, name)
                restarted.append(name)
        except errors as exc:
            log.error("cannot restart %s %s: %s", what, name, exc)
    return restarted


def stop_each(names: Iterable[str], *, stop: Callable[[str], bool], errors: tuple[type[BaseException], ...],
              what: str, log: logging.Logger) -> list[str]:
    """Stop each of `names` (`stop` returns whether one was running): those stopped. A failure is
    logged as an error and the others are still stopped."""
    stopped = []
    for name in names:
        try:
            if stop(name):
                stopped.append(name)
        except errors as exc:
            log.error("cannot stop %s %s: %s", what, name, exc)
    return stopped
