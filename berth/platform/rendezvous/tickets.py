"""Single-use, expiring attach secrets. Only each secret's SHA-256 is kept, and a claim looks the
hash up: the secret itself is never compared byte by byte, so timing tells an attacker nothing."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

DEFAULT_TICKET_SECONDS = 300.0  # the CLI dials at once; a leaked URL is useless after this


class Attachment(Protocol):
    """What a claimed secret starts: a process wired to `stdio` (a PTY's slave when `tty`)."""

    tty: bool

    def run(self, stdio: int) -> int:
        """Run to the end with `stdio` as stdin/stdout/stderr; the exit status."""

    def stop(self) -> None:
        """End the process early (the client went away or sat idle too long)."""

    def abandon(self) -> None:
        """Nobody attached before the secret expired: record that, start nothing."""


@dataclass
class _Ticket:
    digest: bytes
    attachment: Attachment
    expires: float


class Tickets:
    def __init__(self, ttl: float = DEFAULT_TICKET_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._tickets: dict[bytes, _Ticket] = {}
        self._lock = threading.Lock()

    def issue(self, attachment: Attachment) -> str:
        """A fresh URL-safe secret that starts `attachment` once, within `ttl` seconds."""
        secret = secrets.token_urlsafe(32)
        digest = _digest(secret)
        with self._lock:
            self._tickets[digest] = _Ticket(digest, attachment, self._clock() + self.ttl)
        return secret

    def claim(self, secret: str) -> Attachment | None:
        """The attachment for `secret`, at most once; None when unknown, used or expired."""
        digest = _digest(secret)
        self.expire()
        with self._lock:
            ticket = self._tickets.pop(digest, None)
        if ticket is None or not hmac.compare_digest(ticket.digest, digest):
            return None
        return ticket.attachment

    def expire(self) -> None:
        """Forget expired secrets, telling each attachment nobody came."""
        now = self._clock()
        with self._lock:
            gone = [t for t in self._tickets.values() if t.expires <= now]
            for ticket in gone:
                del self._tickets[ticket.digest]
        for ticket in gone:
            ticket.attachment.abandon()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()
