"""A process's output into the app's log stream in batches (berth.platform.logs.app_log): a line
that a silent command leaves behind still arrives within FLUSH_SECONDS, and a burst is written in
few transactions. SQLite and PostgreSQL."""
from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import select

from berth.platform.logs import app_log
from berth.platform.logs.app_log import AppLog
from berth.platform.logs.models import LogLine
from tests.conftest import Api, User


def logged(app: Flask, process: str) -> list[str]:
    with app.extensions["berth.database"].session(write=False) as session:
        return list(session.scalars(select(LogLine.message).where(LogLine.process == process).order_by(LogLine.id)))


def test_a_line_before_a_long_silence_arrives_within_the_flush_interval(app: Flask, api: Api, alice: User) -> None:
    shop = api.post("/apps", alice, json={"name": "shop"}).get_json()
    log = AppLog(app.extensions["berth.database"], shop["id"], "release.1")
    log.line("started, now sleeping for an hour")
    deadline = time.monotonic() + app_log.FLUSH_SECONDS * 10
    while not logged(app, "release.1") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged(app, "release.1") == ["started, now sleeping for an hour"]


def test_a_burst_is_kept_in_order_and_flushed_at_the_end(app: Flask, api: Api, alice: User) -> None:
    shop = api.post("/apps", alice, json={"name": "shop"}).get_json()
    log = AppLog(app.extensions["berth.database"], shop["id"], "web.1")
    lines = [f"line {n}" for n in range(app_log.FLUSH_LINES * 2 + 7)]
    for line in lines:
        log.line(line)
    log.flush()
    assert logged(app, "web.1") == lines
