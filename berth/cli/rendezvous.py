"""The client side of the rendezvous protocol (`berth run`): TLS to the attach URL, trusting Berth's
CA; the secret line; the `rendezvous` greeting; then stdin to the dyno and its output back until it
exits. The exit status comes as the marker line `heroku run --exit-code` asks for."""
from __future__ import annotations

import os
import re
import select
import socket
import ssl
import sys
from typing import BinaryIO
from urllib.parse import urlsplit

from berth.cli.errors import CliError

# Appended to the command, as `heroku run --exit-code` does; Berth answers with the marker line.
EXIT_STATUS_REQUEST = ' ; echo "\uFFFF heroku-command-exit-status: $?"'
_MARKER_START = "\uFFFF".encode()
_MARKER = re.compile(rb"\xef\xbf\xbf heroku-command-exit-status: (\d+)\r?\n?")
EOT = b"\x04"  # a client without a terminal ends its input with it
CONNECT_TIMEOUT = 30.0


def connect(attach_url: str, ca_pem: str) -> ssl.SSLSocket:
    """The attached session, past the greeting."""
    parts = urlsplit(attach_url)
    if parts.scheme != "rendezvous" or not parts.hostname or not parts.port:
        raise CliError(f"the server answered an attach URL berth cannot use ({parts.scheme}://…); "
                       "expected rendezvous://host:port/…")
    context = ssl.create_default_context(cadata=ca_pem)
    try:
        raw = socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT)
        conn = context.wrap_socket(raw, server_hostname=parts.hostname)
        secret = (parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")).encode()
        conn.sendall(secret + b"\r\n")
        greeting = _read_line(conn)
    except ssl.SSLCertVerificationError as exc:
        raise CliError(f"the dyno's server at {parts.hostname}:{parts.port} is not signed by Berth's CA "
                       f"({exc.verify_message}); set BERTH_CA_FILE to the CA from GET /ca.pem") from None
    except OSError as exc:
        raise CliError(f"could not attach to the dyno at {parts.hostname}:{parts.port}: {exc}") from None
    if not greeting.startswith(b"rendezvous"):
        raise CliError(greeting.decode(errors="replace").strip() or "the dyno's server closed the connection")
    conn.settimeout(None)
    return conn


def _read_line(conn: ssl.SSLSocket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 4096:
        byte = conn.recv(1)  # byte by byte: what follows the greeting is the dyno's output
        if not byte:
            break
        data += byte
    return data


def relay(conn: ssl.SSLSocket, stdin: BinaryIO, stdout: BinaryIO, *, tty: bool) -> int | None:
    """Bytes both ways until the dyno's end; its exit status, None when it sent none."""
    held, status = b"", None
    inputs = [conn, stdin]
    while True:
        readable = [conn] if conn.pending() else select.select(inputs, [], [])[0]
        if stdin in readable:
            data = os.read(stdin.fileno(), 65536)
            if data:
                conn.sendall(data)
            else:
                inputs.remove(stdin)
                if not tty:
                    conn.sendall(EOT)
        if conn in readable:
            try:
                data = conn.recv(65536)
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                break
            held += data
            shown, held = _split_marker(held)
            stdout.write(shown)
            stdout.flush()
    found = _MARKER.search(held)
    if found:
        status = int(found.group(1))
        held = held[:found.start()] + held[found.end():]
    stdout.write(held)
    stdout.flush()
    return status


def _split_marker(data: bytes) -> tuple[bytes, bytes]:
    """What can be shown now, and what may be (the start of) the exit-status marker, held back."""
    at = data.find(_MARKER_START)
    if at >= 0:
        return data[:at], data[at:]
    for keep in (2, 1):  # a marker's first bytes at the end of a chunk
        if data.endswith(_MARKER_START[:keep]):
            return data[:-keep], data[-keep:]
    return data, b""


def attach(attach_url: str, ca_pem: str, *, tty: bool) -> int | None:
    """Attach this terminal (or these pipes) to the dyno; its exit status."""
    conn = connect(attach_url, ca_pem)
    saved = None
    if tty:
        import termios
        import tty as terminal

        saved = termios.tcgetattr(sys.stdin.fileno())
        terminal.setraw(sys.stdin.fileno(), termios.TCSANOW)  # keeps what was typed ahead
    try:
        return relay(conn, sys.stdin.buffer, sys.stdout.buffer, tty=tty)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        conn.close()
