"""Tailing a log session on a real gunicorn while lines are POSTed to /logs."""
from __future__ import annotations

import base64
import contextlib
import statistics
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from berth import crypto
from berth.db import Database
from berth.platform.api.logs import BATCH_LINES, POLL_SECONDS
from berth.platform.apps import get_app
from berth.platform.logs.app_log import AppLog
from berth.platform.logs.tokens import issue_input_token
from tests.conftest import TEST_KEY
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, str]]:
    """gunicorn (1 process, 4 threads), a user, an app `tailed` and a log input token for it."""
    base = tmp_path_factory.mktemp("berth-logs-live")
    with live_server(base, workers=1, threads=4, SECRET_KEYS=TEST_KEY) as live:
        key = live.create_user("tail@example.com")
        assert live.api("POST", "/apps", key, json={"name": "tailed"}).status_code == 201
        crypto.configure([TEST_KEY])  # the token is stored encrypted with the server's key
        database = Database(f"sqlite:///{base / 'data' / 'berth.sqlite3'}")
        try:
            with database.transaction() as session:
                app = get_app(session, _owner_id(live, key), "tailed")
                token = issue_input_token(session, app, source="app", owner=None)
        finally:
            database.dispose()
        yield live, key, token


def _owner_id(live: LiveServer, key: str) -> str:
    return live.api("GET", "/account", key).json()["id"]


def post_line(live: LiveServer, token: str, process: str, message: str) -> None:
    frame = f"<190>1 2026-01-01T00:00:00+00:00 host {token} {process} - - {message}".encode()
    resp = requests.post(live.url + "/logs", data=str(len(frame)).encode() + b" " + frame, timeout=10,
                         headers={"Content-Type": "application/logplex-1", "Authorization": "Basic " +
                                  base64.b64encode(f"token:{token}".encode()).decode()})
    assert resp.status_code == 204, resp.text


def open_tail(live: LiveServer, key: str, accept: str, **params: object) -> requests.Response:
    created = live.api("POST", "/apps/tailed/log-sessions", key, json={"tail": True, **params})
    assert created.status_code == 201, created.text
    url = created.json()["logplex_url"]
    assert url.startswith(live.url + "/log-sessions/")
    resp = requests.get(url, headers={"Accept": accept}, stream=True, timeout=(5, 10))
    assert resp.status_code == 200
    return resp


def payloads(resp: requests.Response, sse: bool) -> Iterator[str]:
    """Each displayed line's message, as it arrives."""
    for raw in resp.iter_lines(chunk_size=1, decode_unicode=True):
        if sse and not raw.startswith("data: "):
            continue  # ids, blank separators, keep-alive comments
        line = raw.removeprefix("data: ") if sse else raw
        yield line.split(": ", 1)[1]


@pytest.mark.parametrize("accept", ["text/plain", "text/event-stream"])
def test_tail_shows_history_then_new_lines(server: tuple[LiveServer, str, str], accept: str) -> None:
    live, key, token = server
    sse = accept == "text/event-stream"
    post_line(live, token, "web.1", f"history {accept}")
    post_line(live, token, "worker.1", f"filtered out {accept}")
    resp = open_tail(live, key, accept, dyno="web", lines=1)
    assert resp.headers["Content-Type"].startswith(accept)
    try:
        lines = payloads(resp, sse)
        assert next(lines) == f"history {accept}"
        for n in range(3):
            post_line(live, token, "worker.2", "not shown")
            post_line(live, token, f"web.{n + 1}", f"live {n}")
            started = time.monotonic()
            assert next(lines) == f"live {n}"
            assert time.monotonic() - started < 3  # polled about every 0.5 s
    finally:
        resp.close()


def test_closed_tails_free_their_threads(server: tuple[LiveServer, str, str]) -> None:
    live, key, token = server
    # As many tails as the server has threads, each closed by its client.
    for accept in ("text/plain", "text/event-stream", "text/plain", "text/event-stream"):
        open_tail(live, key, accept, lines=1).close()
    # No line is written to them, yet each notices its client left and frees its thread: with
    # all four still busy this request would wait (and time out) instead of being answered.
    post_line(live, token, "web.1", "after close")
    resp = open_tail(live, key, "text/plain", lines=1)
    try:
        assert next(payloads(resp, False)) == "after close"
        assert live.api("GET", "/apps/tailed", key).status_code == 200
    finally:
        resp.close()


def test_unknown_session_on_the_live_server(server: tuple[LiveServer, str, str]) -> None:
    live, _key, _token = server
    resp = requests.get(live.url + "/log-sessions/nope", timeout=10)
    assert resp.status_code == 404 and resp.json()["id"] == "not_found"


@contextlib.contextmanager
def tailing_a_writer(live: LiveServer, key: str, first: str, **options: object) -> Iterator[tuple[AppLog, Iterator[str]]]:
    """What a dyno's output forwarder writes through (an AppLog that knows Berth's data dir), its line
    `first` written, and a tail of web.1 that has shown it."""
    database = Database(f"sqlite:///{Path(live.env['BERTH_DATA_DIR']) / 'berth.sqlite3'}")
    app_id = live.api("GET", "/apps/tailed", key).json()["id"]
    writer = AppLog(database, app_id, "web.1", data_dir=Path(live.env["BERTH_DATA_DIR"]), **options)
    writer.line(first)
    writer.flush()
    resp = open_tail(live, key, "text/plain", lines=1, dyno="web.1")
    try:
        lines = payloads(resp, False)
        assert next(lines) == first  # the history: the tail reads on from here
        yield writer, lines
    finally:
        resp.close()
        writer.close()
        database.dispose()


def test_a_writer_that_knows_the_data_dir_wakes_the_tail_at_once(server: tuple[LiveServer, str, str]) -> None:
    live, key, _token = server
    with tailing_a_writer(live, key, "woken 0", flush_lines=1) as (writer, lines):
        latencies = []
        for n in range(1, 8):
            time.sleep(0.13)  # out of step with the poll interval
            began = time.monotonic()
            writer.line(f"woken {n}")
            assert next(lines) == f"woken {n}"
            latencies.append(time.monotonic() - began)
        assert statistics.median(latencies) < POLL_SECONDS / 4, latencies  # polling alone: ~POLL_SECONDS / 2


def test_a_burst_bigger_than_one_read_reaches_the_tail_without_waiting_for_polls(
        server: tuple[LiveServer, str, str]) -> None:
    live, key, _token = server
    with tailing_a_writer(live, key, "before the burst", flush_lines=3000) as (writer, lines):
        for n in range(3000):  # one commit, within the buffer's slack: two reads of BATCH_LINES
            writer.line(f"burst {n}")
        received, arrived = [], []
        for _ in range(3000):
            received.append(next(lines))
            arrived.append(time.monotonic())
        assert received == [f"burst {n}" for n in range(3000)]
        # Between the first read's last line and the second read's first: a query, not a poll's wait.
        gap = arrived[BATCH_LINES] - arrived[BATCH_LINES - 1]
        assert gap < POLL_SECONDS / 2, gap


def test_a_tail_overtaken_by_the_buffer_is_told_with_l11(server: tuple[LiveServer, str, str]) -> None:
    live, key, _token = server
    with tailing_a_writer(live, key, "read by the tail", flush_lines=4501) as (writer, lines):
        for n in range(4501):  # one commit: the buffer's trim drops the tail's line and 1001 after it
            writer.line(f"overtaking {n}")
        notice = next(lines)
        assert notice.startswith("Error L11 (Tail buffer overflow) -> This tail session dropped messages since ")
        assert next(lines) == "overtaking 1001"  # the oldest line the buffer kept
