"""The router's connections to a dead machine's dynos are aborted, so nginx fails over at once."""
from __future__ import annotations

import socket

from berth.platform.router.connections import abort_connections


def test_a_connection_waiting_on_an_address_is_aborted_and_others_are_left() -> None:
    with socket.create_server(("127.0.0.1", 0)) as dead, socket.create_server(("127.0.0.1", 0)) as alive:
        waiting = socket.create_connection(dead.getsockname())
        other = socket.create_connection(alive.getsockname())
        waiting.settimeout(5)
        other.settimeout(0.2)
        assert abort_connections([f"127.0.0.1:{dead.getsockname()[1]}"]) == 1
        try:
            waiting.recv(1)
            raise AssertionError("the connection was not aborted")
        except ConnectionAbortedError:
            pass
        try:
            other.recv(1)
            raise AssertionError("the other connection was touched")
        except TimeoutError:
            pass
        waiting.close()
        other.close()


def test_what_is_not_an_address_is_skipped() -> None:
    assert abort_connections(["198.51.100.2:80; rm -rf /", "-K:1", "host:port"]) == 0
