"""The log buffer on both databases: the 1500-line cap, filters, order, display form."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from sqlalchemy import func, select

from berth.db import Database
from berth.platform.logs import store
from berth.platform.logs.models import LogLine
from berth.platform.logs.store import Entry
from tests.conftest import Api, User


@pytest.fixture
def db(app: Flask) -> Database:
    return app.extensions["berth.database"]


def make_app(api: Api, user: User, name: str) -> str:
    resp = api.post("/apps", user, json={"name": name})
    assert resp.status_code == 201, resp.json
    return resp.json["id"]


def messages(lines: list[LogLine]) -> list[str]:
    return [line.message for line in lines]


def test_keeps_the_newest_1500_lines_per_app(api: Api, alice: User, db: Database) -> None:
    one, other = make_app(api, alice, "store-one"), make_app(api, alice, "store-two")
    with db.transaction() as session:
        store.append(session, other, [Entry("app", "web.1", "other app")])
        assert store.append(session, one, [Entry("app", "web.1", f"m{i}") for i in range(1000)]) == 1000
    with db.transaction() as session:
        store.append(session, one, [Entry("app", "web.1", f"m{i}") for i in range(1000, 1700)])
    with db.session(write=False) as session:
        kept = store.read(session, one, limit=1500)
        assert messages(kept) == [f"m{i}" for i in range(200, 1700)]  # oldest first
        assert messages(store.read(session, one, limit=3)) == ["m1697", "m1698", "m1699"]
        assert messages(store.read(session, other, limit=1500)) == ["other app"]  # untouched
        assert store.newest_id(session, one) == kept[-1].id
        # Within the slack nothing is deleted yet: a reader a moment behind still finds its lines.
        first = store.read(session, one, limit=1, after_id=0)
        assert messages(first) == ["m0"]
    kept = 1500 + store.TRIM_SLACK
    total = kept + store.TRIM_EVERY + 1  # past this many: trimmed to the newest `kept`
    with db.transaction() as session:
        store.append(session, one, [Entry("app", "web.1", f"m{i}") for i in range(1700, total)])
    with db.session(write=False) as session:
        count = session.scalar(select(func.count()).select_from(LogLine).where(LogLine.app_id == one))
        assert count == kept
        assert messages(store.read(session, one, limit=1, after_id=0)) == [f"m{total - kept}"]
        assert len(store.read(session, one, limit=1500)) == 1500  # what readers may ask for
        assert messages(store.read(session, other, limit=1500)) == ["other app"]  # untouched


def test_filters_by_source_process_and_type(api: Api, alice: User, db: Database) -> None:
    app_id = make_app(api, alice, "store-filter")
    with db.transaction() as session:
        store.append(session, app_id, [
            Entry("app", "web.1", "a"), Entry("heroku", "web.1", "b"), Entry("app", "web.2", "c"),
            Entry("app", "web.10", "d"), Entry("app", "webby.1", "e"), Entry("app", "worker.1", "f"),
            Entry("heroku", "router", "g"), Entry("app", "web_1", "h"), Entry("app", "web", "i")])
    with db.session(write=False) as session:
        def read(**kw: str) -> list[str]:
            return messages(store.read(session, app_id, limit=100, **kw))
        assert read(dyno="web") == ["a", "b", "c", "d", "i"]       # a type: web.N, and web itself
        assert read(dyno="web.1") == ["a", "b"]                     # exact: not web.10
        assert read(dyno="we") == []                                # no partial-name matching
        assert read(dyno="web_") == []                              # LIKE wildcards are literal
        assert read(source="heroku") == ["b", "g"]
        assert read(source="app", dyno="web") == ["a", "c", "d", "i"]
        assert read(dyno="router") == ["g"]
        assert read(source="nobody") == []


def test_after_id_pages_forward(api: Api, alice: User, db: Database) -> None:
    app_id = make_app(api, alice, "store-follow")
    with db.transaction() as session:
        store.append(session, app_id, [Entry("app", "web.1", str(i)) for i in range(10)])
    with db.session(write=False) as session:
        everything = store.read(session, app_id, limit=100)
        first = everything[0].id
        assert messages(store.read(session, app_id, limit=3, after_id=first)) == ["1", "2", "3"]
        assert messages(store.read(session, app_id, limit=3, after_id=everything[-1].id)) == []
        assert store.newest_id(session, "no-such-app") == 0


def test_long_lines_split_nul_replaced_and_times_kept(api: Api, alice: User, db: Database) -> None:
    app_id = make_app(api, alice, "store-clean")
    when = datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    with db.transaction() as session:
        written = store.append(session, app_id, [
            Entry("app", "web.1", "x" * 10001, logged_at=when), Entry("app", "p" * 80, "nul\x00here")])
        assert written == 3
        assert store.append(session, app_id, []) == 0
    with db.session(write=False) as session:
        lines = store.read(session, app_id, limit=10)
    assert [len(line.message) for line in lines] == [10000, 1, 8]
    assert lines[2].message == "nul\ufffdhere"
    assert lines[2].process == "p" * 64
    assert lines[0].logged_at == when
    assert store.format_line(lines[0]) == "2026-11-26T08:00:00.123456+00:00 app[web.1]: " + "x" * 10000
    assert lines[2].logged_at.tzinfo is not None


def test_awkward_messages_and_their_own_times_come_back_as_written(api: Api, alice: User, db: Database) -> None:
    """PostgreSQL takes lines with COPY: its escapes (tab, newline, backslash, `\\N` for NULL) must not
    leak into or out of a message."""
    app_id = make_app(api, alice, "store-awkward")
    written = ["a\tb", "multi\nline", "back\\slash", "\\N", "", "ünïcødé ✓", "carriage\rreturn", "nul\x00byte"]
    at = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))
    with db.transaction() as session:
        store.append(session, app_id, [Entry("app", "web.1", message, at) for message in written])
    with db.session(write=False) as session:
        lines = store.read(session, app_id, limit=100)
    assert messages(lines) == written[:-1] + ["nul\ufffdbyte"]
    assert {line.logged_at for line in lines} == {at} and lines[0].logged_at.tzinfo is not None


def test_read_on_says_when_the_buffer_dropped_lines_a_tail_had_not_read(api: Api, alice: User, db: Database) -> None:
    app_id = make_app(api, alice, "store-read-on")
    with db.transaction() as session:
        store.append(session, app_id, [Entry("app", "web.1", "seen")])
    with db.session(write=False) as session:
        seen = store.newest_id(session, app_id)
        assert store.read_on(session, app_id, seen, limit=10) == ([], False)
    with db.transaction() as session:
        store.append(session, app_id, [Entry("app", "web.1", f"n{i}") for i in range(3)])
    with db.session(write=False) as session:
        lines, overtaken = store.read_on(session, app_id, seen, limit=2, dyno="web")
        assert messages(lines) == ["n0", "n1"] and not overtaken
    total = 1500 + store.TRIM_SLACK + store.TRIM_EVERY
    with db.transaction() as session:
        store.append(session, app_id, [Entry("app", "web.1", f"m{i}") for i in range(total)])
    with db.session(write=False) as session:
        lines, overtaken = store.read_on(session, app_id, seen, limit=1, source="app")
        assert overtaken and messages(lines) == [f"m{total - 1500 - store.TRIM_SLACK}"]
