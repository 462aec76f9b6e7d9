"""A partner that resets connections: as a provider does while its web server is killed and restarted.

    python tests/partners/resetting_partner.py PORT

`POST /_admin/resets {"count": N}`: the next N calls under /heroku/resources are read and then
answered with a TCP reset (no HTTP answer at all). Every other resource call succeeds: provision
answers 200 `{"id": uuid}`, plan change and deprovision 204, actions 200 `{"message": "done"}`.
`GET /_admin/calls` counts the calls received per kind, reset ones included.
"""
from __future__ import annotations

import json
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Partner(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.lock = threading.Lock()
        self.resets = 0
        self.calls: dict[str, int] = {}


class Handler(BaseHTTPRequestHandler):
    server: Partner
    protocol_version = "HTTP/1.1"

    def _body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return json.loads(raw) if raw.strip() else None

    def _send(self, status: int, document: Any = None) -> None:
        raw = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _resource_call(self, kind: str) -> bool:
        """Count the call; True when it was answered with a reset."""
        with self.server.lock:
            self.server.calls[kind] = self.server.calls.get(kind, 0) + 1
            reset = self.server.resets > 0
            self.server.resets -= 1 if reset else 0
        if reset:
            self._reset()
        return reset

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/_admin/calls":
            with self.server.lock:
                return self._send(200, dict(self.server.calls))
        self._send(404, {"message": "Not found."})

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        if self.path == "/_admin/resets":
            with self.server.lock:
                self.server.resets = int(body["count"])
            return self._send(200, {})
        if self.path == "/heroku/resources":
            if not self._resource_call("provision"):
                self._send(200, {"id": body["uuid"], "config": {}})
        elif "/actions/" in self.path:
            if not self._resource_call("action"):
                self._send(200, {"message": "done"})
        else:
            self._send(404, {"message": "Not found."})

    def do_PUT(self) -> None:  # noqa: N802
        self._body()
        if not self._resource_call("plan change"):
            self._send(204)

    def do_DELETE(self) -> None:  # noqa: N802
        if not self._resource_call("deprovision"):
            self._send(204)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:  # the connection was reset on purpose
            pass

    def log_message(self, *args: Any) -> None:
        pass


if __name__ == "__main__":
    Partner(int(sys.argv[1])).serve_forever()
