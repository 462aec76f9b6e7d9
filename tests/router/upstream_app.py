"""A tiny web dyno for router tests, run in its own process: `python upstream_app.py NAME PORT`.

GET /            -> 200, JSON {"dyno": NAME, "headers": {...}} (the headers the router sent)
GET /sleep?s=N   -> waits N seconds before answering (H12)
GET /ws          -> a WebSocket-style upgrade: 101, then echoes every byte back
"""
from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        if url.path == "/sleep":
            time.sleep(float(parse_qs(url.query)["s"][0]))
        if url.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while chunk := self.connection.recv(4096):
                self.connection.sendall(chunk)
            self.close_connection = True
            return
        body = json.dumps({"dyno": NAME, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
