"""POST /logs, log sessions and log drains through the test client, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from berth.db import Database, utcnow
from berth.hooks import LOG_DRAIN_ADDON, Hooks
from berth.platform.apps import get_app
from berth.platform.logs import drains, store
from berth.platform.logs.models import LogLine, LogSession
from berth.platform.logs.tokens import issue_input_token
from tests.conftest import Api, User, basic

LOGPLEX = {"Content-Type": "application/logplex-1"}


def counted(*frames: str) -> bytes:
    return b"".join(str(len(f.encode())).encode() + b" " + f.encode() for f in frames)


def frame(process: str, message: str, when: str = "2026-01-02T03:04:05.000006+00:00") -> str:
    return f"<190>1 {when} host t.x {process} - - {message}\n"


@pytest.fixture
def db(app: Flask) -> Database:
    return app.extensions["berth.database"]


@pytest.fixture
def shop(api: Api, alice: User) -> dict[str, Any]:
    resp = api.post("/apps", alice, json={"name": "shop"})
    assert resp.status_code == 201, resp.json
    return resp.json


@pytest.fixture
def input_token(db: Database, alice: User, shop: dict[str, Any]) -> str:
    with db.transaction() as session:
        return issue_input_token(session, get_app(session, alice.id, "shop"), source="papertrail",
                                 owner="attachment-1")


def line_count(db: Database) -> int:
    with db.session(write=False) as session:
        return session.scalar(select(func.count()).select_from(LogLine)) or 0


def post_logs(api: Api, token: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return api.post("/logs", data=body, headers={"Authorization": basic("token", token), **LOGPLEX,
                                                  **(headers or {})})


def read_session(api: Api, user: User, app: str = "shop", **params: Any) -> Any:
    created = api.post(f"/apps/{app}/log-sessions", user, json=params)
    assert created.status_code == 201, created.json
    return api.get(created.json["logplex_url"].removeprefix("http://127.0.0.1:5000"))


def append(db: Database, app_id: str, *entries: tuple[str, str, str]) -> None:
    with db.transaction() as session:
        store.append(session, app_id, [store.Entry(*entry) for entry in entries])


# ---- POST /logs ----------------------------------------------------------------------------

def test_log_input_appends_frames(api: Api, alice: User, db: Database, input_token: str) -> None:
    body = counted(frame("web.1", "hello"), frame("worker.2", "second line"))
    resp = post_logs(api, input_token, body, {"Logplex-Msg-Count": "2", "User-Agent": "acme-logs"})
    assert (resp.status_code, resp.data) == (204, b"")
    shown = read_session(api, alice)
    assert shown.status_code == 200 and shown.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert shown.get_data(as_text=True) == (
        "2026-01-02T03:04:05.000006+00:00 papertrail[web.1]: hello\n"
        "2026-01-02T03:04:05.000006+00:00 papertrail[worker.2]: second line\n")


@pytest.mark.parametrize("authorization", [
    None, "Bearer t.0000", basic("token", "t.00000000-0000-0000-0000-000000000000"),
    basic("user", "TOKEN"), basic("token", ""), "Basic !!!", "Digest x"])
def test_log_input_refuses_bad_credentials(api: Api, db: Database, input_token: str,
                                           authorization: str | None) -> None:
    authorization = authorization and authorization.replace("TOKEN", input_token)
    headers = {**LOGPLEX, **({"Authorization": authorization} if authorization else {})}
    resp = api.post("/logs", data=counted(frame("web.1", "x")), headers=headers)
    assert resp.status_code == 401
    assert resp.json["id"] == "unauthorized" and resp.json["message"]
    assert line_count(db) == 0


def test_an_api_key_is_not_a_log_token(api: Api, alice: User, db: Database, input_token: str) -> None:
    resp = post_logs(api, alice.key, counted(frame("web.1", "x")))
    assert resp.status_code == 401 and line_count(db) == 0


@pytest.mark.parametrize("body, problem", [
    (b"garbage", "octet count"),
    (counted(frame("web.1", "good"), "<190>1 not-a-time h t p - - x"), "frame 2: not RFC 5424"),
    (counted(frame("web.1", "good"))[:-3], "truncated"),
])
def test_malformed_body_appends_nothing(api: Api, db: Database, input_token: str, body: bytes,
                                        problem: str) -> None:
    resp = post_logs(api, input_token, body)
    assert resp.status_code == 400 and resp.json["id"] == "bad_request"
    assert problem in resp.json["message"]
    assert line_count(db) == 0


def test_message_count_must_match(api: Api, db: Database, input_token: str) -> None:
    for count in ("3", "many"):
        resp = post_logs(api, input_token, counted(frame("web.1", "x")), {"Logplex-Msg-Count": count})
        assert resp.status_code == 400 and "Logplex-Msg-Count" in resp.json["message"]
    assert line_count(db) == 0


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_other_content_types_are_refused(api: Api, db: Database, input_token: str,
                                         content_type: str | None) -> None:
    headers = {"Authorization": basic("token", input_token)}
    if content_type:
        headers["Content-Type"] = content_type
    resp = api.post("/logs", data=counted(frame("web.1", "x")), headers=headers)
    assert resp.status_code == 415 and resp.json["id"] == "unsupported_media_type"
    assert line_count(db) == 0


def test_body_over_the_limit_is_413(api: Api, app: Flask, db: Database, input_token: str) -> None:
    size = app.config["MAX_CONTENT_LENGTH"] + 1
    resp = post_logs(api, input_token, b"9" * size)
    assert resp.status_code == 413 and resp.json["id"] == "request_entity_too_large"
    assert line_count(db) == 0


def test_empty_body_is_fine(api: Api, db: Database, input_token: str) -> None:
    assert post_logs(api, input_token, b"").status_code == 204
    assert line_count(db) == 0


# ---- log sessions --------------------------------------------------------------------------

def test_create_log_session(api: Api, alice: User, db: Database, shop: dict[str, Any]) -> None:
    resp = api.post("/apps/shop/log-sessions", alice, json={"lines": 5, "tail": True, "dyno": "web",
                                                            "source": "app"})
    assert resp.status_code == 201
    body = resp.json
    assert set(body) == {"id", "logplex_url", "created_at", "updated_at"}
    assert body["logplex_url"] == f"http://127.0.0.1:5000/log-sessions/{body['id']}"
    assert body["created_at"] == body["updated_at"] and body["created_at"].endswith("Z")
    with db.session(write=False) as session:
        saved = session.get(LogSession, body["id"])
        assert saved is not None
        assert (saved.app_id, saved.lines, saved.tail, saved.source, saved.dyno) == \
            (shop["id"], 5, True, "app", "web")
        assert timedelta(seconds=355) < saved.expires_at - utcnow() <= timedelta(seconds=360)
    # Defaults; by id; the older CLI's `type`; empty strings mean no filter.
    resp = api.post(f"/apps/{shop['id']}/log-sessions", alice, json={"type": "worker", "source": ""})
    with db.session(write=False) as session:
        saved = session.get(LogSession, resp.json["id"])
        assert saved is not None
        assert (saved.lines, saved.tail, saved.source, saved.dyno) == (100, False, None, "worker")


@pytest.mark.parametrize("params", [
    {"lines": 0}, {"lines": 1501}, {"lines": "many"}, {"tail": "yes"}, {"dyno": ["web"]},
    {"source": "x" * 65}, {"colour": True}])
def test_log_session_validation(api: Api, alice: User, db: Database, shop: dict[str, Any],
                                params: dict[str, Any]) -> None:
    resp = api.post("/apps/shop/log-sessions", alice, json=params)
    assert resp.status_code == 422 and resp.json["id"] == "invalid_params", resp.json
    with db.session(write=False) as session:
        assert session.scalar(select(func.count()).select_from(LogSession)) == 0


def test_log_sessions_only_for_those_who_see_the_app(api: Api, alice: User, bob: User,
                                                     shop: dict[str, Any]) -> None:
    missing = api.post("/apps/nope/log-sessions", alice, json={})
    hidden = api.post("/apps/shop/log-sessions", bob, json={})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json == missing.json
    assert api.post("/apps/shop/log-sessions", json={}).status_code == 401
    # A collaborator may.
    assert api.post("/apps/shop/collaborators", alice, json={"user": bob.email}).status_code == 201
    assert api.post("/apps/shop/log-sessions", bob, json={}).status_code == 201


def test_reading_a_session_filters_and_limits(api: Api, alice: User, db: Database,
                                              shop: dict[str, Any]) -> None:
    append(db, shop["id"], ("app", "web.1", "one"), ("heroku", "web.1", "two"), ("app", "web.2", "three"),
           ("app", "worker.1", "four"), ("heroku", "router", "five"))

    def shown(**params: Any) -> list[str]:
        resp = read_session(api, alice, **params)
        assert resp.status_code == 200
        return [line.split(": ", 1)[1] for line in resp.get_data(as_text=True).splitlines()]

    assert shown() == ["one", "two", "three", "four", "five"]
    assert shown(lines=2) == ["four", "five"]
    assert shown(dyno="web") == ["one", "two", "three"]
    assert shown(dyno="web.2") == ["three"]
    assert shown(source="heroku") == ["two", "five"]
    assert shown(source="app", dyno="web", lines=1) == ["three"]
    assert shown(dyno="nothing") == []


def test_session_as_server_sent_events(api: Api, alice: User, db: Database, shop: dict[str, Any]) -> None:
    append(db, shop["id"], ("app", "web.1", "plain"), ("app", "web.1", "two\nlines"))
    created = api.post("/apps/shop/log-sessions", alice, json={})
    path = created.json["logplex_url"].removeprefix("http://127.0.0.1:5000")
    resp = api.get(path, headers={"Accept": "text/event-stream"})
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["Cache-Control"] == "no-cache"
    events = resp.get_data(as_text=True).split("\n\n")
    assert events[-1] == "" and len(events) == 3
    first, second = (event.splitlines() for event in events[:2])
    assert first[0].startswith("id: ") and first[1].startswith("data: 20")
    assert first[1].endswith(" app[web.1]: plain")
    assert second[1].endswith(" app[web.1]: two") and second[2] == "data: lines"
    # Resuming after the first event (an EventSource reconnecting) skips what it saw.
    again = api.get(path, headers={"Accept": "text/event-stream", "Last-Event-ID": first[0][4:]})
    assert again.get_data(as_text=True).count("id: ") == 1
    # */* is not an explicit request for SSE.
    assert api.get(path, headers={"Accept": "*/*"}).headers["Content-Type"].startswith("text/plain")


def test_unknown_or_expired_session_is_404(api: Api, alice: User, db: Database, shop: dict[str, Any]) -> None:
    assert api.get("/log-sessions/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.get("/log-sessions/not-even-a-uuid").json["id"] == "not_found"
    created = api.post("/apps/shop/log-sessions", alice, json={"tail": True})
    with db.transaction() as session:
        session.execute(update(LogSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    path = created.json["logplex_url"].removeprefix("http://127.0.0.1:5000")
    assert api.get(path).status_code == 404
    # Expired sessions are cleared when the next one is made.
    api.post("/apps/shop/log-sessions", alice, json={})
    with db.session(write=False) as session:
        assert session.get(LogSession, created.json["id"]) is None


# ---- log drains ----------------------------------------------------------------------------

def test_drain_crud(api: Api, alice: User, db: Database, shop: dict[str, Any]) -> None:
    assert api.get("/apps/shop/log-drains", alice).json == []
    url = "https://user:secret@logs.example.com/ingest/1"
    created = api.post("/apps/shop/log-drains", alice, json={"url": url})
    assert created.status_code == 201
    drain = created.json
    assert set(drain) == {"id", "url", "token", "addon", "app", "created_at", "updated_at"}
    assert drain["url"] == url and drain["token"].startswith("d.") and drain["addon"] is None
    assert drain["app"] == {"id": shop["id"], "name": "shop"}
    syslog = api.post("/apps/shop/log-drains", alice, json={"url": "syslog+tls://logs.example.com:6514"})
    assert syslog.status_code == 201
    assert [d["url"] for d in api.get("/apps/shop/log-drains", alice).json] == \
        [url, "syslog+tls://logs.example.com:6514"]
    # By id, by token, by URL raw or percent-encoded, by app id.
    for ref in (drain["id"], drain["token"], url, "https:%2F%2Fuser:secret@logs.example.com%2Fingest%2F1"):
        found = api.get(f"/apps/{shop['id']}/log-drains/{ref}", alice)
        assert found.status_code == 200 and found.json == drain, (ref, found.json)
    assert api.get("/apps/shop/log-drains/syslog+tls://logs.example.com:6514", alice).json["id"] == \
        syslog.json["id"]
    missing = api.get("/apps/shop/log-drains/https://elsewhere.example.com", alice)
    assert missing.status_code == 404 and missing.json["resource"] == "log_drain"

    removed = api.delete(f"/apps/shop/log-drains/{url}", alice)
    assert removed.status_code == 200 and removed.json == drain
    assert api.delete(f"/apps/shop/log-drains/{drain['token']}", alice).status_code == 404
    assert api.delete(f"/apps/shop/log-drains/{syslog.json['token']}", alice).status_code == 200
    assert api.get("/apps/shop/log-drains", alice).json == []
    # Re-adding the same URL gives a new token.
    again = api.post("/apps/shop/log-drains", alice, json={"url": url})
    assert again.status_code == 201 and again.json["token"] != drain["token"]


@pytest.mark.parametrize("body", [
    {}, {"url": ""}, {"url": "ftp://logs.example.com"}, {"url": "logs.example.com"},
    {"url": "https://"}, {"url": 5}, {"url": "https://a.example.com", "extra": 1}, {"url": "https://x\x00y"}])
def test_drain_validation(api: Api, alice: User, shop: dict[str, Any], body: dict[str, Any]) -> None:
    resp = api.post("/apps/shop/log-drains", alice, json=body)
    assert resp.status_code == 422 and resp.json["id"] == "invalid_params", resp.json
    assert api.get("/apps/shop/log-drains", alice).json == []


def test_five_drains_and_no_duplicates(api: Api, alice: User, shop: dict[str, Any]) -> None:
    for n in range(4):
        assert api.post("/apps/shop/log-drains", alice,
                        json={"url": f"https://logs.example.com/{n}"}).status_code == 201
    duplicate = api.post("/apps/shop/log-drains", alice, json={"url": "https://logs.example.com/3"})
    assert duplicate.status_code == 422 and "already drains to that URL" in duplicate.json["message"]
    assert api.post("/apps/shop/log-drains", alice, json={"url": "https://logs.example.com/4"}).status_code == 201
    sixth = api.post("/apps/shop/log-drains", alice, json={"url": "https://logs.example.com/5"})
    assert sixth.status_code == 422 and "already has 5 log drains" in sixth.json["message"]
    assert len(api.get("/apps/shop/log-drains", alice).json) == 5
    # The limit is per app.
    api.post("/apps", alice, json={"name": "other-shop"})
    assert api.post("/apps/other-shop/log-drains", alice,
                    json={"url": "https://logs.example.com/4"}).status_code == 201


def test_addon_drains_cannot_be_removed_by_users(api: Api, app: Flask, alice: User, db: Database,
                                                 shop: dict[str, Any]) -> None:
    hooks: Hooks = app.extensions["berth.hooks"]
    hooks.answer(LOG_DRAIN_ADDON, None)  # first as a platform without a broker
    with db.transaction() as session:
        owned = drains.add_drain(session, get_app(session, alice.id, "shop"), "syslog://addon.example.com:514",
                                 owner="x")
        ref = owned.token
    listed = api.get("/apps/shop/log-drains", alice).json
    assert [d["addon"] for d in listed] == [None]  # no lookup installed: shown without its add-on
    refused = api.delete(f"/apps/shop/log-drains/{ref}", alice)
    assert refused.status_code == 422 and refused.json["id"] == "invalid_params"
    assert refused.json["message"] == "This drain belongs to an add-on; remove the add-on to remove it."

    addon = {"id": "a1", "name": "papertrail-round-12", "app": {"id": shop["id"], "name": "shop"}}
    seen: list[str] = []

    def lookup(session: Any, owner: str) -> dict[str, Any] | None:
        seen.append(owner)
        return addon if owner == "x" else None
    hooks.answer(LOG_DRAIN_ADDON, lookup)
    assert api.get(f"/apps/shop/log-drains/{ref}", alice).json["addon"] == addon
    refused = api.delete(f"/apps/shop/log-drains/{ref}", alice)
    assert refused.json["message"] == \
        "This drain belongs to the add-on papertrail-round-12; remove the add-on to remove it."
    assert seen and set(seen) == {"x"}
    assert len(api.get("/apps/shop/log-drains", alice).json) == 1
    # Add-on drains do not count against the user's five.
    for n in range(5):
        assert api.post("/apps/shop/log-drains", alice,
                        json={"url": f"https://logs.example.com/{n}"}).status_code == 201


def test_drains_only_for_those_who_see_the_app(api: Api, alice: User, bob: User,
                                               shop: dict[str, Any]) -> None:
    drain = api.post("/apps/shop/log-drains", alice, json={"url": "https://logs.example.com/a"}).json
    missing = api.get("/apps/nope/log-drains", alice)
    for resp in (api.get("/apps/shop/log-drains", bob),
                 api.post("/apps/shop/log-drains", bob, json={"url": "https://evil.example.com"}),
                 api.get(f"/apps/shop/log-drains/{drain['id']}", bob),
                 api.delete(f"/apps/shop/log-drains/{drain['id']}", bob)):
        assert resp.status_code == 404 and resp.json == missing.json
    assert api.get("/apps/shop/log-drains").status_code == 401
    assert len(api.get("/apps/shop/log-drains", alice).json) == 1
    assert api.post("/apps/shop/collaborators", alice, json={"user": bob.email}).status_code == 201
    assert api.delete(f"/apps/shop/log-drains/{drain['id']}", bob).status_code == 200


def test_endpoints_are_in_the_openapi_document(api: Api) -> None:
    paths = api.get("/openapi.json").json["paths"]
    assert {"post"} <= set(paths["/logs"]) and "post" in paths["/apps/{app_ref}/log-sessions"]
    assert "get" in paths["/log-sessions/{session_id}"]
    assert {"get", "post"} <= set(paths["/apps/{app_ref}/log-drains"])
    assert {"get", "delete"} <= set(paths["/apps/{app_ref}/log-drains/{ref}"])
