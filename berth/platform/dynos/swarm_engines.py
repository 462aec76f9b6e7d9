"""Each Swarm node's own Docker engine (BERTH_SWARM_NODE_ENGINES), for what the manager does not
tell: a task container's memory, whether the kernel OOM-killed it, and a one-off's terminal. Each
node is named by its hostname, as the manager reports it on the node's tasks.

The endpoints are platform credentials (a node's engine is root on that machine): they are never
logged nor put in an error, which names the node only. A tcp:// engine is reached with mutual TLS.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Mapping

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.tls import TLSConfig

from berth.platform.dynos.backend import DynoError
from berth.platform.dynos.swarm import API_VERSION

__all__ = ["NodeEngines", "EngineError", "memory_in_use", "ENGINE_TIMEOUT"]

log = logging.getLogger(__name__)
ENGINE_TIMEOUT = 5.0  # seconds: a frozen machine's engine must not hold a watcher for long


class EngineError(DynoError):
    """A node's engine is not configured, unreachable or refused; the message names the node only."""


class NodeEngines:
    def __init__(self, endpoints: Mapping[str, str], tls_dir: str = "", *, timeout: float = ENGINE_TIMEOUT) -> None:
        self._endpoints = dict(endpoints)
        self._tls_dir = tls_dir
        self.timeout = timeout
        self._clients: dict[str, docker.APIClient] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._endpoints)

    def __repr__(self) -> str:  # never the endpoints
        return f"NodeEngines(nodes={sorted(self._endpoints)})"

    @property
    def nodes(self) -> list[str]:
        return sorted(self._endpoints)

    def knows(self, node: str) -> bool:
        return node in self._endpoints

    def client(self, node: str, timeout: float | None = None) -> docker.APIClient:
        """The engine of `node` (one shared client per node; `timeout` gives a fresh one of its own)."""
        endpoint = self._endpoints.get(node)
        if endpoint is None:
            raise EngineError(f"no engine is configured for Swarm node {node} (BERTH_SWARM_NODE_ENGINES)")
        if timeout is not None:
            return self._connect(node, endpoint, timeout)
        with self._lock:
            client = self._clients.get(node)
            if client is None:
                client = self._clients[node] = self._connect(node, endpoint, self.timeout)
            return client

    def _connect(self, node: str, endpoint: str, timeout: float) -> docker.APIClient:
        tls: TLSConfig | bool = False
        if endpoint.startswith("tcp://"):
            directory = Path(self._tls_dir)
            tls = TLSConfig(client_cert=(str(directory / "cert.pem"), str(directory / "key.pem")),
                            ca_cert=str(directory / "ca.pem"), verify=True)
        try:
            # One connection per thread using it at once: the memory watch reads up to 16 in parallel.
            return docker.APIClient(base_url=endpoint, version=API_VERSION, timeout=timeout, tls=tls,
                                    max_pool_size=16)
        except DockerException as exc:
            raise EngineError(f"the engine of Swarm node {node} cannot be used: {type(exc).__name__}") from None

    def call(self, node: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """`APIClient.<method>(*args)` on `node`'s engine; EngineError (naming the node) on failure,
        NotFound passed through (a container that is gone)."""
        client = self.client(node)
        try:
            return getattr(client, method)(*args, **kwargs)
        except NotFound:
            raise
        except (APIError, DockerException, OSError) as exc:
            reason = getattr(exc, "explanation", None) or type(exc).__name__
            raise EngineError(f"the engine of Swarm node {node} failed to {method}: {reason}") from None

    def memory(self, node: str, container: str) -> int | None:
        """Bytes the container's processes use (RSS + swap), one sample; None when it is gone."""
        try:
            stats = self.call(node, "stats", container, stream=False, one_shot=True)
        except NotFound:
            return None
        return memory_in_use(stats)

    def oom_killed(self, node: str, container: str) -> bool:
        """Whether the kernel killed a process of the (ended) container for its memory limit."""
        try:
            return bool(((self.call(node, "inspect_container", container) or {}).get("State") or {})
                        .get("OOMKilled"))
        except NotFound:
            return False

    def kill(self, node: str, container: str) -> None:
        try:
            self.call(node, "kill", container, signal="SIGKILL")
        except NotFound:
            pass

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def memory_in_use(stats: Mapping[str, Any]) -> int | None:
    """Heroku's measure (runtime.md §6.7), as the local cgroup reader has it: the processes' own
    memory in RAM or swapped out, page cache left out. cgroup v1 reports total_rss and total_swap,
    v2 anon (and no swap here); failing both, usage less cache. None for a container not running."""
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    if "total_rss" in detail:
        return int(detail["total_rss"]) + int(detail.get("total_swap") or 0)
    if "anon" in detail:
        return int(detail["anon"])
    if "usage" in memory:
        return max(0, int(memory["usage"]) - int(detail.get("cache") or detail.get("inactive_file") or 0))
    return None
