"""One attached session: the secret line, the `rendezvous` greeting, then bytes both ways between
the TLS socket and the process's PTY (a TTY client) or socket pair (pipes), until the process ends."""
from __future__ import annotations

import errno
import logging
import os
import pty
import select
import socket
import ssl
import threading
import time

from berth.platform.rendezvous.tickets import Attachment, Tickets

log = logging.getLogger(__name__)
GREETING = b"rendezvous\r\n"
EOT = b"\x04"  # a non-TTY client's end of input
MAX_SECRET_LINE = 1024
SECRET_IDLE = 0.5  # heroku3 sends the secret without CRLF: a short silence ends it
SECRET_DEADLINE = 10.0
UNKNOWN = b"Error: this attach URL is unknown, already used or expired. Run the command again.\r\n"


def read_secret(conn: ssl.SSLSocket) -> str | None:
    """The secret the client sent: up to CRLF, or what came before a short idle."""
    data, deadline = b"", time.monotonic() + SECRET_DEADLINE
    while b"\r\n" not in data and len(data) < MAX_SECRET_LINE:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        conn.settimeout(min(remaining, SECRET_IDLE) if data else remaining)
        try:
            chunk = conn.recv(MAX_SECRET_LINE - len(data))
        except (socket.timeout, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].strip().decode("ascii", "replace")
    return line.lstrip("/").split("?", 1)[0] or None


def serve_connection(conn: ssl.SSLSocket, tickets: Tickets, idle_limit: float) -> None:
    """Everything after the TLS handshake; closes `conn`."""
    try:
        secret = read_secret(conn)
        attachment = tickets.claim(secret) if secret else None
        if attachment is None:
            conn.sendall(UNKNOWN)
            return
        conn.settimeout(None)
        conn.sendall(GREETING)
        _Session(conn, attachment, idle_limit).run()
    except (OSError, ssl.SSLError) as exc:
        log.info("rendezvous connection ended: %s", exc)
    finally:
        _close(conn)


class _Session:
    def __init__(self, conn: ssl.SSLSocket, attachment: Attachment, idle_limit: float) -> None:
        self.conn, self.attachment, self.idle_limit = conn, attachment, idle_limit
        self.last_activity = time.monotonic()
        self.ended = threading.Event()
        if attachment.tty:
            self.ours, self.theirs = pty.openpty()
        else:
            ours, theirs = socket.socketpair()
            self.ours, self.theirs = ours.detach(), theirs.detach()

    def run(self) -> None:
        pump_in = threading.Thread(target=self._client_to_process, daemon=True, name="rendezvous-in")
        pump_out = threading.Thread(target=self._process_to_client, daemon=True, name="rendezvous-out")
        watchdog = threading.Thread(target=self._watch_idle, daemon=True, name="rendezvous-idle")
        pump_out.start()
        pump_in.start()
        watchdog.start()
        try:
            self.attachment.run(self.theirs)
        finally:
            os.close(self.theirs)  # the process's copies are gone too: the output side sees its end
            pump_out.join(timeout=30)
            self.ended.set()
            os.close(self.ours)

    def _client_to_process(self) -> None:
        try:
            while not self.ended.is_set():
                data = self.conn.recv(65536)
                if not data:
                    break  # the client hung up: nobody is left to talk to the process
                self.last_activity = time.monotonic()
                if not self.attachment.tty and EOT in data:
                    _write_all(self.ours, data.split(EOT, 1)[0])
                    with socket.socket(fileno=os.dup(self.ours)) as ours:
                        ours.shutdown(socket.SHUT_WR)  # the process reads the end of its stdin
                    continue
                _write_all(self.ours, data)
        except (OSError, ssl.SSLError):
            pass
        if not self.ended.is_set():
            self.attachment.stop()

    def _process_to_client(self) -> None:
        while True:
            try:
                data = os.read(self.ours, 65536)
            except OSError as exc:
                if exc.errno == errno.EIO:  # a PTY whose other side is closed: the end
                    break
                raise
            if not data:
                break
            self.last_activity = time.monotonic()
            try:
                self.conn.sendall(data)
            except (OSError, ssl.SSLError):
                self.attachment.stop()
                break

    def _watch_idle(self) -> None:
        while not self.ended.wait(min(5.0, self.idle_limit)):
            if time.monotonic() - self.last_activity > self.idle_limit:
                try:
                    self.conn.sendall(b"\r\nError: no input or output for a while; the dyno was stopped.\r\n")
                except (OSError, ssl.SSLError):
                    pass
                self.attachment.stop()
                return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        select.select([], [fd], [])
        view = view[os.write(fd, view):]


def _close(conn: ssl.SSLSocket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
