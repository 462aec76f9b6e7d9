"""Log drain delivery: each drain gets a copy of its app's stream, in order, from when it was added.

`python -m berth.platform.logs.forwarder` (started by `make run`) delivers every half second.
HTTPS (and http) drains get batched POSTs of logplex frames (`application/logplex-1`,
`Logplex-Msg-Count`, `Logplex-Frame-Id` unique per batch and kept on a retry, `Logplex-Drain-Token`,
Basic auth from the URL); syslog:// drains get the same octet-counted frames over TCP, and
syslog+tls:// over TLS. As Logplex does: 2xx is delivered; a 4xx other than 429 is dropped;
5xx, 429, timeouts and connection errors are retried twice, then the batch is dropped (Logplex is
not storage: the app's own stream keeps the lines). Every connection goes through the
installation's address policy (`berth.outbound`): a drain whose name resolves to a private
address is dropped, whatever it resolved to when it was added.
"""
from __future__ import annotations

import logging
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

import requests
from sqlalchemy import select, update

from berth.db import Database
from berth.logplex import format_frame
from berth.outbound import TargetPolicy, TargetRefused
from berth.platform.logs import store
from berth.platform.logs.models import LogDrain, LogLine
from berth.process import start_process

log = logging.getLogger("berth.drains")
BATCH_LINES = 100
EXTRA_ATTEMPTS = 2
TIMEOUT_SECONDS = 4.0
PAUSE_SECONDS = 0.5
REFUSED = "refused: "


@dataclass
class _Pending:
    frame_id: str
    failures: int = 0


@dataclass
class Forwarder:
    database: Database
    targets: TargetPolicy = field(default_factory=TargetPolicy)
    http: requests.Session = field(init=False)
    pending: dict[str, _Pending] = field(default_factory=dict)  # drain id -> batch being retried
    told: set[str] = field(default_factory=set)  # drains whose refusal the app's log was told of

    def __post_init__(self) -> None:
        self.http = self.targets.session()

    def deliver_once(self) -> int:
        """One pass over every drain; returns how many lines were delivered."""
        with self.database.session(write=False) as session:
            drains = [(d.id, d.app_id, d.url, d.token, d.cursor) for d in session.scalars(select(LogDrain))]
        delivered = 0
        for drain_id, app_id, url, token, cursor in drains:
            with self.database.session(write=False) as session:
                lines = list(session.scalars(select(LogLine).where(LogLine.app_id == app_id, LogLine.id > cursor)
                                             .order_by(LogLine.id).limit(BATCH_LINES)))
            if not lines:
                continue
            pending = self.pending.setdefault(drain_id, _Pending(str(uuid.uuid4())))
            body = b"".join(format_frame(line.logged_at, line.source, line.process, line.message)
                            for line in lines)
            outcome = self._send(url, token, body, len(lines), pending.frame_id)
            if outcome == "retry" and pending.failures < EXTRA_ATTEMPTS:
                pending.failures += 1
                continue
            if outcome != "delivered":
                log.warning("drain %s: dropped %d lines (%s)", drain_id, len(lines), outcome)
            else:
                delivered += len(lines)
            self.pending.pop(drain_id, None)
            with self.database.transaction() as session:
                session.execute(update(LogDrain).where(LogDrain.id == drain_id, LogDrain.cursor == cursor)
                                .values(cursor=lines[-1].id))
                if outcome.startswith(REFUSED) and drain_id not in self.told:
                    self.told.add(drain_id)  # once: the line itself would be refused again
                    store.append(session, app_id, [store.Entry("heroku", "logplex", (
                        f"Error L13 (drain refused): drain {token} was not delivered to. "
                        f"{outcome[len(REFUSED):]} Remove the drain or point it at a public address."))])
        return delivered

    def _send(self, url: str, token: str, body: bytes, count: int, frame_id: str) -> str:
        """'delivered', 'dropped' (the receiver refused it for good), 'retry', or REFUSED + why
        (the address policy refused the target: nothing was sent)."""
        parts = urlsplit(url)
        try:
            if parts.scheme in ("http", "https"):
                return self._post(parts, token, body, count, frame_id)
            _syslog(self.targets, parts, body, tls=parts.scheme == "syslog+tls")
            return "delivered"
        except TargetRefused as refused:
            return REFUSED + str(refused)
        except (requests.RequestException, OSError) as error:
            log.info("drain delivery to %s failed: %s", parts.hostname, type(error).__name__)
            return "retry"

    def _post(self, parts: SplitResult, token: str, body: bytes, count: int, frame_id: str) -> str:
        auth = (parts.username or "", parts.password or "") if parts.username else None
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        answer = self.http.post(target, data=body, auth=auth, timeout=TIMEOUT_SECONDS, headers={
            "Content-Type": "application/logplex-1", "Logplex-Msg-Count": str(count),
            "Logplex-Frame-Id": frame_id, "Logplex-Drain-Token": token, "User-Agent": "Logplex/berth"})
        if 200 <= answer.status_code < 300:
            return "delivered"
        if 400 <= answer.status_code < 500 and answer.status_code != 429:
            return "dropped"
        return "retry"

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.deliver_once()
            except Exception:  # a bad drain or a database blip must not stop delivery for good
                log.exception("drain delivery pass failed")
            stop.wait(PAUSE_SECONDS)


def _syslog(targets: TargetPolicy, parts: SplitResult, body: bytes, *, tls: bool) -> None:
    host, port = parts.hostname or "", parts.port or 6514
    with targets.connect(host, port, TIMEOUT_SECONDS, what="log drain URL") as raw:
        if tls:
            with ssl.create_default_context().wrap_socket(raw, server_hostname=host) as wrapped:
                wrapped.sendall(body)
        else:
            raw.sendall(body)


def main() -> None:
    settings, database, stop = start_process()
    Forwarder(database, TargetPolicy.from_settings(settings)).serve(stop)


if __name__ == "__main__":
    main()
