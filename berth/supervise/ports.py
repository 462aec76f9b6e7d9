"""Ports for local servers: whether one can be bound now, the free ones of a range, whether a
server listens, and a throwaway loopback port (tests, clusters with no fixed port)."""
from __future__ import annotations

import socket
from typing import Collection, Iterable, Iterator

__all__ = ["LOOPBACK", "can_bind", "free_loopback_port", "free_ports", "listening"]

LOOPBACK = "127.0.0.1"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def can_bind(host: str, port: int, *, reuse_address: bool = True) -> bool:
    """Nothing listens on (host, port) now: a server may bind it. `reuse_address` binds as most
    servers do (SO_REUSEADDR: a port whose old connections linger in TIME_WAIT counts as free);
    without it such a port counts as taken."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_ports(host: str, ports: Iterable[int], *, taken: Collection[int] = (),
               reuse_address: bool = True) -> Iterator[int]:
    """The ports of `ports`, in their order, that no record holds (`taken`) and nothing listens on,
    each checked only when asked for (callers must still tolerate losing a race for one)."""
    for port in ports:
        if port not in taken and can_bind(host, port, reuse_address=reuse_address):
            yield port


def free_loopback_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (callers must tolerate races)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something accepts TCP connections on (host, port) now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
