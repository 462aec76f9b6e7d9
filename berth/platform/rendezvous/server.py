"""The rendezvous listener: TLS with the installation CA's certificate, one thread per connection."""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from pathlib import Path

from berth.platform.rendezvous.bridge import serve_connection
from berth.platform.rendezvous.tickets import Tickets

log = logging.getLogger(__name__)
DEFAULT_IDLE_LIMIT = 3600.0  # Heroku stops an attached dyno after an hour without I/O
HANDSHAKE_SECONDS = 10.0


class RendezvousServer:
    def __init__(self, host: str, port: int, cert_path: Path, key_path: Path, tickets: Tickets,
                 idle_limit: float = DEFAULT_IDLE_LIMIT) -> None:
        self.tickets, self.idle_limit = tickets, idle_limit
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert_path, key_path)
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.port = self.listener.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> "RendezvousServer":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="rendezvous-accept")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        while not self._closed:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                if self._closed:
                    return
                raise
            threading.Thread(target=self._handle, args=(raw,), daemon=True, name="rendezvous-conn").start()

    def _handle(self, raw: socket.socket) -> None:
        raw.settimeout(HANDSHAKE_SECONDS)
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.info("rendezvous TLS handshake failed: %s", exc)
            raw.close()
            return
        serve_connection(conn, self.tickets, self.idle_limit)

    def close(self) -> None:
        self._closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
