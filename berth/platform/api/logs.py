"""POST /logs (log input), /apps/{app}/log-sessions, /log-sessions/{id}, /apps/{app}/log-drains."""
from __future__ import annotations

import re
import select
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from flask import Response, request

from berth.auth import parse_authorization_header
from berth.db import Database, utcnow
from berth.errors import BadRequest, BerthError, InvalidParams, NotFound, Unauthorized
from berth.hooks import LOG_DRAIN_ADDON
from berth.jobs.wakeup import woken_by_signal
from berth.httpapi.body import load
from berth.httpapi.context import current_account_id, database, db_session, public
from berth.httpapi.openapi import describe
from berth.outbound import TargetPolicy
from berth.platform import apps
from berth.platform.api import blueprint
from berth.platform.api.helpers import hooks, settings
from berth import logplex
from berth.platform.logs import drains, store
from berth.platform.logs.app_log import app_log_subject
from berth.platform.logs.models import LogLine
from berth.platform.logs.schemas import (
    LogDrainCreateSchema,
    LogDrainSchema,
    LogSessionCreateSchema,
    LogSessionSchema,
)
from berth.platform.logs.tokens import find_input_token
from berth.platform.models import App

Reply = Any
LOGPLEX_TYPE = "application/logplex-1"
POLL_SECONDS = 0.5       # how often a tail looks for new lines when no writer wakes it
BATCH_LINES = 1500       # lines per read at most; after a full one the next read follows at once
KEEPALIVE_SECONDS = 15.0  # an SSE comment this often lets a vanished client be noticed
_SSE_LINE_BREAK = re.compile(r"\r\n|\r|\n")


# ---- log input ----------------------------------------------------------------------------

@blueprint.post("/logs")
@public  # its own credentials: Basic `token:t.<uuid>`, not an API key
@describe(summary="Log input: logplex frames (application/logplex-1) appended to an app's stream",
          status=204)
def log_input() -> Reply:
    credentials = parse_authorization_header(request.headers.get("Authorization"))
    if credentials is None or credentials.username != "token" or not credentials.password:
        raise Unauthorized()
    # A short read outside the write transaction: a rejected POST never takes SQLite's write lock.
    with database().session(write=False) as session:
        token = find_input_token(session, credentials.password)
        if token is None:
            raise Unauthorized()
        app_id, source = token.app_id, token.source
    if request.mimetype != LOGPLEX_TYPE:
        raise BerthError(f"Content-Type must be {LOGPLEX_TYPE}.", error_id="unsupported_media_type",
                         status=415)
    try:
        parsed = logplex.parse_body(request.get_data())
    except ValueError as exc:
        raise BadRequest(f"Malformed logplex body: {exc}.") from None
    count = request.headers.get("Logplex-Msg-Count")
    if count is not None and count.strip() != str(len(parsed)):
        raise BadRequest(f"Logplex-Msg-Count says {count.strip()!r} but the body holds "
                         f"{len(parsed)} frames.")
    store.append(db_session(), app_id, [
        store.Entry(source=source, process=frame.procid, message=frame.message,
                    logged_at=frame.timestamp) for frame in parsed])
    return "", 204


# ---- log sessions -------------------------------------------------------------------------

@blueprint.post("/apps/<app_ref>/log-sessions")
@describe(summary="A logplex_url that streams the app's recent lines (and new ones with tail)",
          request=LogSessionCreateSchema, response=LogSessionSchema, status=201)
def create_log_session(app_ref: str) -> Reply:
    params = load(LogSessionCreateSchema())
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    log_session = store.create_session(session, app, **params)
    return LogSessionSchema(api_url=settings().api_url).dump(log_session), 201


@dataclass(frozen=True)
class _Reading:
    """What a stream needs of its log session, copied out so no DB session stays open."""
    app_id: str
    lines: int
    tail: bool
    source: str | None
    dyno: str | None
    expires_at: datetime


@blueprint.get("/log-sessions/<session_id>")
@public  # the unguessable URL is the credential, as with Logplex's session URLs
@describe(summary="Stream a log session (text/plain, or SSE when Accept has text/event-stream)",
          streams=("text/plain", "text/event-stream"))
def read_log_session(session_id: str) -> Reply:
    db = database()
    with db.session(write=False) as session:
        found = store.live_session(session, session_id)
        if found is None:
            raise NotFound("Couldn't find that log session; it may have expired.", resource="log_session")
        reading = _Reading(found.app_id, found.lines, found.tail, found.source, found.dyno,
                           found.expires_at)
    sse = _wants_event_stream()
    resume = request.headers.get("Last-Event-ID", "").strip() if sse else ""
    # Not stream_with_context: the generator must not hold the request (or its DB session)
    # open, so it gets the Database itself and opens a short session per read.
    body = _stream(db, reading, sse, int(resume) if resume.isdigit() else None, _client_socket(),
                   settings().data_dir)
    response = Response(body, mimetype="text/event-stream" if sse else "text/plain")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not buffer a tail
    return response


def _wants_event_stream() -> bool:
    # Only an explicit text/event-stream: `*/*` keeps the plain text older clients read.
    return any(mimetype == "text/event-stream" and quality > 0
               for mimetype, quality in request.accept_mimetypes)


def _client_socket() -> socket.socket | None:
    # gunicorn and Werkzeug's server both expose the connection; other servers may not.
    found = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    return found if isinstance(found, socket.socket) else None


def _client_gone(connection: socket.socket | None) -> bool:
    """True once the client has closed its end. A server thread notices a vanished client only
    when a write fails; a quiet tail would keep its thread until expiry without this."""
    if connection is None:
        return False
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except ValueError:  # a TLS socket refuses recv flags: only a failed write will tell
        return False
    except OSError:  # reset, or closed under us
        return True


def _stream(db: Database, reading: _Reading, sse: bool, resume_after: int | None,
            connection: socket.socket | None, data_dir: Path) -> Iterator[bytes]:
    yield b""  # sends the headers now, even when there is nothing to show yet
    with db.session(write=False) as session:
        last = store.newest_id(session, reading.app_id)
        lines = store.read(session, reading.app_id, limit=reading.lines, source=reading.source,
                           dyno=reading.dyno, after_id=resume_after)
    known = bool(lines) or resume_after is None  # `last` names a line of this app (0: none yet)
    if lines:
        last = lines[-1].id
        yield _encode(lines, sse)
    elif resume_after is not None:
        last = min(resume_after, last)  # an id from the future would hide every new line
    if not reading.tail:
        return
    # Writers that know the data dir (dyno output forwarders) wake the tail once their lines are
    # committed: a chatty app's lines are read before the 1500-line buffer drops them.
    with woken_by_signal(data_dir, app_log_subject(reading.app_id)) as pause:
        sent, full = time.monotonic(), False
        last_shown_at = lines[-1].logged_at if lines else utcnow()
        while utcnow() < reading.expires_at:
            if not full:
                pause(POLL_SECONDS)
            if _client_gone(connection):
                return
            with db.session(write=False) as session:
                lines, overtaken = store.read_on(session, reading.app_id, last, limit=BATCH_LINES,
                                                 source=reading.source, dyno=reading.dyno)
            full = len(lines) == BATCH_LINES
            if overtaken and known and last:
                yield _encode([_tail_overflow(reading.app_id, last, last_shown_at)], sse)
            if lines:
                last, sent, known, last_shown_at = lines[-1].id, time.monotonic(), True, lines[-1].logged_at
                yield _encode(lines, sse)
            elif sse and time.monotonic() - sent >= KEEPALIVE_SECONDS:
                sent = time.monotonic()
                yield b": keep-alive\n\n"


def _tail_overflow(app_id: str, last: int, since: datetime) -> LogLine:
    """Logplex's L11, in the stream (never stored): the tail fell so far behind that the buffer
    dropped lines it had not read. (How many is not known here: the buffer keeps no count.)"""
    return LogLine(id=last, app_id=app_id, logged_at=utcnow(), source="heroku", process="logplex",
                   message=f"Error L11 (Tail buffer overflow) -> This tail session dropped messages since "
                           f"{logplex.rfc5424_time(since)}")


def _encode(lines: list[LogLine], sse: bool) -> bytes:
    if not sse:
        return "".join(store.format_line(line) + "\n" for line in lines).encode("utf-8")
    events = []
    for line in lines:
        # A line break inside a message would end the `data:` field: continue it on another.
        data = "".join(f"data: {part}\n" for part in _SSE_LINE_BREAK.split(store.format_line(line)))
        events.append(f"id: {line.id}\n{data}\n")
    return "".join(events).encode("utf-8")


# ---- log drains ---------------------------------------------------------------------------

def _drain_schema(app: App, **kwargs: Any) -> LogDrainSchema:
    # Which add-on owns a drain is the broker's knowledge: a question create_app wires (a platform
    # without a broker answers None).
    session = db_session()
    return LogDrainSchema(app=app, addon_for=lambda owner: hooks().ask(LOG_DRAIN_ADDON, session, owner),
                          **kwargs)


@blueprint.get("/apps/<app_ref>/log-drains")
@describe(summary="An app's log drains (its own and its add-ons')", response=LogDrainSchema, many=True)
def list_log_drains(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return _drain_schema(app, many=True).dump(drains.list_drains(session, app))


@blueprint.post("/apps/<app_ref>/log-drains")
@describe(summary="Add a log drain (at most 5 per app)", request=LogDrainCreateSchema,
          response=LogDrainSchema, status=201)
def add_log_drain(app_ref: str) -> Reply:
    params = load(LogDrainCreateSchema())
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return _drain_schema(app).dump(drains.add_drain(session, app, params["url"].strip(),
                                                         targets=TargetPolicy.from_settings(settings()))), 201


# merge_slashes=False: a drain is also named by its URL, whose `//` must reach the view intact.
@blueprint.get("/apps/<app_ref>/log-drains/<path:ref>", merge_slashes=False)
@describe(summary="One log drain by id, URL or token", response=LogDrainSchema)
def show_log_drain(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return _drain_schema(app).dump(drains.get_drain(session, app, ref))


@blueprint.delete("/apps/<app_ref>/log-drains/<path:ref>", merge_slashes=False)
@describe(summary="Remove a log drain (not an add-on's)", response=LogDrainSchema)
def remove_log_drain(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    drain = drains.get_drain(session, app, ref)
    body = _drain_schema(app).dump(drain)
    if drain.owner is not None:
        raise InvalidParams(_owned_message(body))
    session.delete(drain)
    session.flush()
    return body


def _owned_message(body: dict[str, Any]) -> str:
    name = (body.get("addon") or {}).get("name")
    owner = f"the add-on {name}" if name else "an add-on"
    return f"This drain belongs to {owner}; remove the add-on to remove it."

