"""Heroku's lifecycle lines for Swarm tasks (runtime.md §6), made from what the runner sees of a
task from one round to the next: `heroku[web.1]: Starting process with command …`, state changes,
`Process exited with status N`, R10 when a web task's health check never saw $PORT. Pure.

Swarm reports a task's end as an error string and the container's exit code; an OOM kill reads
like any SIGKILL (137) there. Whether the kernel killed it for its memory, only the node's own engine
says (swarm_engines.py): the runner asks it and passes `oom_killed`, which makes the end an R15.
"""
from __future__ import annotations

from berth.platform.dynos.swarm import TaskFacts

__all__ = ["lifecycle_lines", "ended"]

RUNNING = ("starting", "up")
ENDED = ("complete", "shutdown", "failed", "rejected", "orphaned", "remove")
CRASHED = ("failed", "rejected")


def lifecycle_lines(before: TaskFacts | None, now: TaskFacts, *, boot_timeout: float,
                    adopted: bool = False, oom_killed: bool = False) -> list[str]:
    """The heroku lines for the change from `before` (None: not seen until now) to `now`. A task
    seen first but `adopted` (it ran before this runner started) gets none. `oom_killed`: its node's
    engine says the kernel killed it at its memory limit (R15)."""
    if before is None:
        if adopted:
            return []
        lines = []
        if now.status.state in RUNNING or now.task_state in ENDED:
            lines.append(f"Starting process with command `{now.command}`")
        if now.status.state == "up":
            lines.append("State changed from starting to up")
        return lines + _ended(None, now, boot_timeout, oom_killed)
    lines = []
    if before.status.state == "starting" and now.status.state == "up":
        lines.append("State changed from starting to up")
    if before.status.state in RUNNING and now.status.state == "down" and now.task_state not in ENDED:
        lines.append("Stopping all processes with SIGTERM")
    if before.task_state not in ENDED:
        lines += _ended(before, now, boot_timeout, oom_killed)
    return lines


def ended(before: TaskFacts | None, now: TaskFacts) -> bool:
    """Whether `now` is the first sight of the task's end."""
    return now.task_state in ENDED and (before is None or before.task_state not in ENDED)


def _ended(before: TaskFacts | None, now: TaskFacts, boot_timeout: float, oom_killed: bool = False) -> list[str]:
    if now.task_state not in ENDED:
        return []
    lines = []
    was = before.status.state if before is not None else "starting"
    # Failed is a crash even when the runner sees it only once Swarm has made its replacement.
    crashed = now.task_state in CRASHED
    if crashed and was == "starting" and "unhealthy" in now.error:
        lines.append(f"Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {boot_timeout:g} "
                     "seconds of launch")
        lines.append("Stopping process with SIGKILL")
    elif oom_killed:
        lines.append("Error R15 (Memory quota vastly exceeded)")
        lines.append("Stopping process with SIGKILL")
    if now.status.exit_status is not None:
        lines.append(f"Process exited with status {now.status.exit_status}")
    elif now.error:
        lines.append(f"Process ended: {now.error}")
    if crashed:
        lines.append(f"State changed from {'up' if was == 'up' else 'starting'} to crashed")
    elif was in RUNNING:
        lines.append(f"State changed from {was} to down")
    return lines
