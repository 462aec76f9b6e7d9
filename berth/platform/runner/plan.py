"""Planning one app's round: from what it wants (desired.AppWants) and what its backend runs, the
steps that bring them together. Pure: no I/O, so every case is testable on its own.

- A wanted name with no live dyno of the current release gets one started; a crashed one first
  waits out its cool-off (crashes.CrashBook).
- A deploy rolls: the new release's `web.1` starts beside the old one, which is stopped only once
  the new one is `up` (workers are `up` at once, so theirs are replaced straight away).
- Dynos of names no longer wanted (scaled down, a type gone), and those a user asked to restart or
  stop, are stopped; a stopped formation dyno is started again, as Heroku replaces it.
- Ended dynos that are no longer needed are removed (their files go with them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Union

from berth.platform.dynos.backend import DynoStatus
from berth.platform.runner.crashes import CrashBook
from berth.platform.runner.desired import AppWants, WantedDyno

LIVE = ("starting", "up")


@dataclass(frozen=True)
class Start:
    wanted: WantedDyno
    after_crash: bool = False


@dataclass(frozen=True)
class Stop:
    status: DynoStatus
    why: str  # for the log: "scaled down", "replaced by v7", "restarted by a user"


@dataclass(frozen=True)
class Remove:
    status: DynoStatus


Step = Union[Start, Stop, Remove]


def plan_app(wants: AppWants, observed: list[DynoStatus], *, stopping: Collection[str], requested: Collection[str],
             crashes: CrashBook, now: float) -> list[Step]:
    """`stopping`: backend ids already being stopped; `requested`: ids users asked to restart/stop."""
    wanted = {dyno.name: dyno for dyno in wants.dynos}
    steps: list[Step] = []
    up_now = {status.name for status in observed
              if status.state == "up" and status.id not in stopping and status.id not in requested
              and status.name in wanted and status.release_version == wanted[status.name].release_version}
    for status in observed:
        if status.id in stopping:
            continue
        want = wanted.get(status.name)
        current = want is not None and status.release_version == want.release_version
        if status.state in LIVE:
            if want is None:
                steps.append(Stop(status, "scaled down"))
            elif status.id in requested:
                steps.append(Stop(status, "restarted"))
            elif not current and status.name in up_now:
                steps.append(Stop(status, f"replaced by v{want.release_version}"))
        elif not (current and status.state == "crashed"):
            steps.append(Remove(status))  # ended and not a crash to wait out: its name starts afresh
    for name, want in wanted.items():
        copies = [status for status in observed if status.name == name
                  and status.release_version == want.release_version]
        if any(status.state in LIVE for status in copies):
            continue  # running, or being stopped: a restart's replacement waits for it to end
        crashed = [status for status in copies if status.state == "crashed"]
        if crashed:
            latest = max(crashed, key=lambda status: status.started_at)
            due = crashes.restart_at(want.app_id, name, want.release_version, latest.id, latest.started_at, now)
            if any(status.id in requested for status in crashed):
                due = now  # a user's restart ends the cool-off, as on Heroku
            if now >= due:
                steps.extend(Remove(status) for status in crashed)
                steps.append(Start(want, after_crash=True))
            continue
        steps.append(Start(want))
    return steps
