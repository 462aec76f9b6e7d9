"""R14 and R15 for Swarm tasks, from their containers' memory as each node's own engine reports it
(runtime.md §6.7, as the local keeper does from its cgroup): over the size's quota an R14 every
R14_EVERY seconds while it stays over; at the kill threshold R15, and the container is killed (Swarm
restarts the task as after any crash). The container's hard limit (the kill threshold) stays the
backstop: when the kernel kills first, the runner learns it from the engine's `OOMKilled`.

One round reads each watched task's memory once (`stats`, one sample, no stream), at most THREADS at
a time; a node whose engine does not answer costs the round at most the engine's timeout and its
tasks are skipped, never the others'.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from berth.platform.dynos.swarm_engines import EngineError, NodeEngines

__all__ = ["MemoryWatch", "Watched", "Notice", "memory_lines", "R14_EVERY"]

log = logging.getLogger(__name__)
R14_EVERY = 20.0  # seconds between R14 lines while a dyno stays over its quota (as the keeper)
THREADS = 16  # reads mostly wait for the engine's next stats tick (~1 s): they overlap well
KILLED_KEPT = 600.0  # seconds a kill is remembered for its end's lines (the runner sees ends in seconds)


@dataclass(frozen=True)
class Watched:
    """A running task to sample."""

    task_id: str
    app_id: str
    dyno: str  # web.1
    node: str  # its Swarm node's hostname
    container: str
    quota: int  # bytes: over it, R14
    kill_at: int  # bytes: at it, R15 and killed


@dataclass(frozen=True)
class Notice:
    """Lines for one dyno's log (source heroku)."""

    app_id: str
    dyno: str
    lines: tuple[str, ...]


def memory_lines(used: int, quota: int, kill_at: int, *, r14_due: bool) -> tuple[str, ...]:
    """What a sample of `used` bytes says: R15 at the kill threshold, R14 (when due) over the quota."""
    if used >= kill_at:
        return ("Error R15 (Memory quota vastly exceeded)", "Stopping process with SIGKILL")
    if used > quota and r14_due:
        return (f"Process running mem={used // 2**20}M({100 * used / quota:.1f}%)",
                "Error R14 (Memory quota exceeded)")
    return ()


class MemoryWatch:
    def __init__(self, engines: NodeEngines, *, threads: int = THREADS, r14_every: float = R14_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engines, self.r14_every, self.clock = engines, r14_every, clock
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="swarm-memory")
        self._last_r14: dict[str, float] = {}  # task id → when its last R14 was said
        # Task ids killed here for R15, until the runner logs their end (which then says no R15 again).
        self._killed: dict[str, float] = {}
        self._killed_lock = threading.Lock()  # the runner's round asks while a watch round runs
        self.last_round_seconds = 0.0  # what the last round cost, for the runner's log

    def killed_for_r15(self, task_id: str) -> bool:
        """Whether this watch killed the (ended) task for R15; forgets it."""
        with self._killed_lock:
            return self._killed.pop(task_id, None) is not None

    def round(self, tasks: list[Watched]) -> list[Notice]:
        """Sample every task once, in parallel; the lines to log. Kills a task at its threshold."""
        began = time.monotonic()
        watched = [task for task in tasks if task.container and self.engines.knows(task.node)]
        used = list(self._pool.map(self._sample, watched))
        notices = []
        now = self.clock()
        for task, sample in zip(watched, used):
            if sample is None or task.task_id in self._killed:
                continue
            due = now - self._last_r14.get(task.task_id, float("-inf")) >= self.r14_every
            lines = memory_lines(sample, task.quota, task.kill_at, r14_due=due)
            if not lines:
                continue
            if lines[0].startswith("Error R15"):
                try:
                    self.engines.kill(task.node, task.container)
                except EngineError as exc:
                    log.warning("%s of app %s is over its kill threshold but could not be killed: %s",
                                task.dyno, task.app_id, exc)
                    continue
                with self._killed_lock:
                    self._killed[task.task_id] = now
            else:
                self._last_r14[task.task_id] = now
            notices.append(Notice(task.app_id, task.dyno, lines))
        live = {task.task_id for task in tasks}
        self._last_r14 = {key: value for key, value in self._last_r14.items() if key in live}
        with self._killed_lock:
            self._killed = {key: when for key, when in self._killed.items() if now - when < KILLED_KEPT}
        self.last_round_seconds = time.monotonic() - began
        return notices

    def _sample(self, task: Watched) -> int | None:
        try:
            return self.engines.memory(task.node, task.container)
        except EngineError as exc:
            log.debug("no memory sample for %s of app %s: %s", task.dyno, task.app_id, exc)
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
