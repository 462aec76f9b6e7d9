"""Waking the runner once a change it acts on is committed: a release going live, a scaling. (It
polls every second too; the nudge makes a deploy or `ps:scale` take effect at once.)"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from berth.hooks import FORMATION_CHANGED, RELEASE_CREATED, RELEASE_CURRENT, Hooks
from berth.jobs.wakeup import nudge_runner


def register_runner_nudges(hooks: Hooks, data_dir: Path) -> None:
    def after_commit(session: Session, **_: Any) -> None:
        event.listen(session, "after_commit", lambda _session: nudge_runner(data_dir), once=True)

    for change in (RELEASE_CREATED, RELEASE_CURRENT, FORMATION_CHANGED):
        hooks.register(change, after_commit)
