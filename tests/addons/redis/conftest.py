"""Fixtures for the Redis add-on: a SQLite control plane in tmp_path and real redis-server
processes, every one of them stopped when the test ends."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from berth import crypto
from berth.addons.redis import instances
from berth.addons.redis.provider import RedisProvider
from berth.broker.partner_api.provider import ProvisionRequest
from berth.config import Settings
from berth.db import Database, new_id
from tests.live_server import free_port


@dataclass
class Env:
    settings: Settings
    database: Database

    def provider(self, **kwargs: object) -> RedisProvider:
        return RedisProvider(self.database, self.settings, **kwargs)  # type: ignore[arg-type]


def request(plan: str = "mini", uuid: str | None = None, **options: str) -> ProvisionRequest:
    return ProvisionRequest(uuid=uuid or new_id(), plan=plan, region="local", options=options)


def _leftover_servers(data_dir: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(data_dir) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    crypto.configure(crypto.load_or_create_keys((), data_dir))
    url = f"sqlite:///{data_dir / 'berth.sqlite3'}"
    database = Database(url)
    database.migrate(data_dir)
    settings = Settings(data_dir=data_dir, database_url=url)
    try:
        yield Env(settings, database)
    finally:
        instances.stop_all(settings, database)
        leftovers = _leftover_servers(data_dir)
        for pid in leftovers:  # a test that lost track of a server must not leak it
            os.kill(pid, signal.SIGKILL)
        database.dispose()
        assert not leftovers, f"redis-server processes left running: {leftovers}"


@dataclass
class OperatorServer:
    """A redis-server an operator runs: a config file, an ACL admin user, `default` left open
    (nopass) as a fresh install has it, and a key from an earlier life."""
    port: int
    admin_password: str
    config: Path
    process: "subprocess.Popen[bytes]"

    @property
    def admin_url(self) -> str:
        return f"redis://admin:{self.admin_password}@127.0.0.1:{self.port}"

    @property
    def location(self) -> str:
        return f"127.0.0.1:{self.port}"

    def admin(self) -> "redis.Redis[bytes]":
        return redis.Redis(port=self.port, username="admin", password=self.admin_password,
                           socket_timeout=5, socket_connect_timeout=5)


def _start_operator_server(directory: Path) -> OperatorServer:
    directory.mkdir()
    port, password = free_port(), secrets.token_hex(16)
    config = directory / "redis.conf"
    config.write_text("\n".join([
        "bind 127.0.0.1", f"port {port}", "daemonize no", 'save ""', "appendonly no",
        f"dir {directory}", f"logfile {directory / 'redis.log'}",
        "user default on nopass ~* &* +@all", f"user admin on >{password} ~* &* +@all"]) + "\n")
    process = subprocess.Popen([instances.redis_server_binary(), str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = OperatorServer(port, password, config, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            with server.admin() as admin:
                admin.set("left-from-before", "old")
            return server
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.005)


@pytest.fixture
def operator_servers(tmp_path: Path) -> Iterator[Callable[[int], list[OperatorServer]]]:
    """`operator_servers(n)`: n running operator servers, all stopped when the test ends."""
    started: list[OperatorServer] = []

    def start(count: int) -> list[OperatorServer]:
        servers = [_start_operator_server(tmp_path / f"operator-{len(started) + i}") for i in range(count)]
        started.extend(servers)
        return servers

    try:
        yield start
    finally:
        for server in started:
            server.process.kill()
            server.process.wait()
