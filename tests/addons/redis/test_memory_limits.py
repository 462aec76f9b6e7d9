"""A plan's memory cap holds against clients that never finish a command, queue commands forever
or never read their replies: the redis-server's RSS (psutil) stays within the bound the plan's
client limits promise, and the tenant's ordinary use still works afterwards."""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Iterator

import psutil
import pytest
import redis

from berth.addons.redis import instances
from berth.addons.redis.plans import MB, PLANS, ClientLimits, client_limits
from tests.addons.redis.conftest import request

pytestmark = pytest.mark.slow

SMALLEST = min(PLANS.values(), key=lambda plan: plan.maxmemory_bytes)
# The server's own memory beside data and clients: binary, allocator arenas, the replication
# backlog. A fresh instance sits near 12 MB RSS.
FIXED_OVERHEAD = 32 * MB
# What each attacking client tries to make the server hold: far beyond any per-client limit.
PER_CLIENT_BYTES = 32 * MB
CHUNK = b"x" * 65536


def command(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words)


def rss_bound() -> int:
    """maxmemory for data, the clients' share for every client's buffers together, and the rest."""
    limits = client_limits(SMALLEST.maxmemory_bytes)
    return SMALLEST.maxmemory_bytes + limits.all_clients_bytes + FIXED_OVERHEAD


def unfinished_bulk(declared: int) -> Callable[[], Iterator[bytes]]:
    """`SET k <declared bytes>`, then data that never reaches the declared length."""
    def stream() -> Iterator[bytes]:
        yield b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % declared
        for _ in range(min(declared - 1, PER_CLIENT_BYTES) // len(CHUNK)):
            yield CHUNK
    return stream


def endless_multi() -> Iterator[bytes]:
    """MULTI, then writes queued (their arguments kept in memory) with no EXEC ever."""
    yield command(b"MULTI")
    queued = command(b"SET", b"k", CHUNK)
    for _ in range(PER_CLIENT_BYTES // len(CHUNK)):
        yield queued


def unread_replies() -> Iterator[bytes]:
    """GET of a 1 MB value, again and again, never reading an answer."""
    for _ in range(PER_CLIENT_BYTES // MB):
        yield command(b"GET", b"big")


def attack(host: str, port: int, password: str, stream: Callable[[], Iterator[bytes]],
           stop: threading.Event) -> None:
    try:
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(command(b"AUTH", b"default", password.encode()))
            for data in stream():
                if stop.is_set():
                    return
                sock.sendall(data)
            stop.wait(2)  # hold the connection (and whatever the server keeps for it) a moment
    except OSError:
        pass  # the server cut this client off: what the limits are for


SCENARIOS: dict[str, Callable[[ClientLimits], Callable[[], Iterator[bytes]]]] = {
    "huge-bulk": lambda limits: unfinished_bulk(500_000_000),
    "bulk-at-the-value-limit": lambda limits: unfinished_bulk(limits.value_bytes),
    "endless-multi": lambda limits: endless_multi,
    "unread-replies": lambda limits: unread_replies,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_clients_cannot_push_the_server_past_its_plans_bound(env: Any, scenario: str) -> None:
    stream = SCENARIOS[scenario](client_limits(SMALLEST.maxmemory_bytes))
    provider = env.provider()
    req = request(SMALLEST.name)
    url = provider.provision(req).config["REDIS_URL"]
    details = provider.details(req.uuid)
    with redis.Redis.from_url(url, socket_timeout=5) as tenant:
        tenant.set("big", b"v" * MB)
    server = psutil.Process(instances.pid(env.settings, req.uuid))
    bound, peak, stop = rss_bound(), 0, threading.Event()
    attackers = [threading.Thread(target=attack, args=(details["host"], details["port"], details["password"],
                                                       stream, stop), daemon=True)
                 for _ in range(SMALLEST.max_clients - 1)]
    for attacker in attackers:
        attacker.start()
    deadline = time.monotonic() + 60
    while any(attacker.is_alive() for attacker in attackers) and time.monotonic() < deadline:
        peak = max(peak, server.memory_info().rss)
        if peak > bound:
            break
        time.sleep(0.005)
    stop.set()
    for attacker in attackers:
        attacker.join(timeout=30)
    assert peak <= bound, f"redis-server reached {peak / MB:.0f} MB RSS; the plan's bound is {bound / MB:.0f} MB"
    with redis.Redis.from_url(url, socket_timeout=5) as tenant:  # the server still serves its tenant
        assert tenant.get("big") == b"v" * MB
        tenant.set("after", "ok")
        assert tenant.get("after") == b"ok"


def test_a_value_as_large_as_the_plan_allows_is_stored_and_one_byte_more_is_refused(env: Any) -> None:
    limit = client_limits(SMALLEST.maxmemory_bytes).value_bytes
    provider, req = env.provider(), request(SMALLEST.name)
    url = provider.provision(req).config["REDIS_URL"]
    # The tenant can learn the limit: `addons:action REDIS info`.
    assert provider.action(req.uuid, "info", {}).result["largest_value_bytes"] == limit
    with redis.Redis.from_url(url, socket_timeout=5) as tenant:
        tenant.set("largest", b"x" * limit)
        assert tenant.get("largest") == b"x" * limit
        with pytest.raises(redis.ResponseError, match="proto-max-bulk-len"):
            tenant.append("largest", b"x")
    with redis.Redis.from_url(url, socket_timeout=5) as tenant:
        with pytest.raises((redis.ResponseError, redis.ConnectionError)):
            tenant.set("too-large", b"x" * (limit + 1))
    with redis.Redis.from_url(url, socket_timeout=5) as tenant:
        assert tenant.strlen("largest") == limit and tenant.exists("too-large") == 0


def test_a_tenant_cannot_exempt_its_connection_from_the_clients_share(env: Any) -> None:
    url = env.provider().provision(request(SMALLEST.name)).config["REDIS_URL"]
    with redis.Redis.from_url(url, socket_timeout=5) as tenant:
        for denied in (("CLIENT", "NO-EVICT", "on"), ("SYNC",), ("PSYNC", "?", "-1")):
            with pytest.raises(redis.ResponseError, match="permission|NOPERM"):
                tenant.execute_command(*denied)
