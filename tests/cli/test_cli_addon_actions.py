"""addons:action, pg:*, redis:* and kafka:* run as the real `berth` CLI against a live server with
the first-party add-ons (gunicorn + broker worker + a real PostgreSQL and redis-server)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from berth.addons.postgres.cluster import LocalPostgres
from berth.cli.commands.addon_actions import duration, mb, parse_params, retention_ms
from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.live_server import ROOT, LiveServer, clean_env

pytestmark = pytest.mark.slow

APP = "cli-actions"


@dataclass
class Platform:
    running: BuiltinPlatform
    home: Path

    @property
    def server(self) -> LiveServer:
        return self.running.server

    @property
    def key(self) -> str:
        return self.running.key

    def api(self, method: str, path: str, **json_body: Any) -> requests.Response:
        return self.running.call(method, path, **json_body)

    def config(self, app: str = APP) -> dict[str, str]:
        return self.running.config(app)

    def berth(self, *args: str, input: str = "", cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`python -m berth.cli ARGS` with its own HOME, the API key and this server's URL."""
        sent = {**clean_env(), "HOME": str(self.home), "NETRC": str(self.home / ".netrc"),
                "BERTH_API_URL": self.server.url, "BERTH_API_KEY": self.key, "GIT_CONFIG_NOSYSTEM": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                **(env or {})}
        return subprocess.run([sys.executable, "-m", "berth.cli", *args], env=sent, cwd=cwd or self.home,
                              input=input, capture_output=True, text=True, timeout=120)

    def provision(self, app: str, plan: str) -> dict[str, Any]:
        addon = self.running.provision(app, plan)
        assert addon["state"] == "provisioned", addon
        return addon


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres) -> Iterator[Platform]:
    base = tmp_path_factory.mktemp("cli-actions")
    home = base / "home"
    home.mkdir()
    with builtin_platform(base, postgres_server.admin_url(), "actions@example.com") as running:
        found = Platform(running, home)
        assert found.api("POST", "/apps", name=APP).status_code == 201
        found.provision(APP, "heroku-postgresql")
        found.provision(APP, "heroku-redis")
        yield found


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Failed the way users should see failures: exit 1, one `Error:` line, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def rows(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as connection:
        return int(connection.execute("SELECT count(*) FROM orders").fetchone()[0])


# ---- without a server ----------------------------------------------------------------------

def test_parameters_and_times_are_parsed_like_the_docs_say() -> None:
    assert parse_params(("backup=b001", "partitions=8", "retention_ms=-1", "id=007", "x=")) == {
        "backup": "b001", "partitions": 8, "retention_ms": -1, "id": "007", "x": ""}
    assert retention_ms("86400000") == retention_ms("24h") == retention_ms("1d") == 86_400_000
    assert duration(86_400_000) == "1d" and duration(1500) == "1500 ms"
    assert (mb(0), mb(3000), mb(7 << 20), mb(1 << 30)) == ("0.00 MB", "<0.01 MB", "7.00 MB", "1024.0 MB")


# ---- Postgres ------------------------------------------------------------------------------

def test_pg_info(platform: Platform) -> None:
    shown = ok(platform.berth("pg:info", "-a", APP))
    assert shown.startswith("=== DATABASE (postgresql-")
    assert "Plan:" in shown and "essential-0" in shown and " MB / " in shown and "Available" in shown
    info = json.loads(ok(platform.berth("pg:info", "DATABASE", "-a", APP, "--json")))
    assert info["plan"] == "essential-0" and 0 < info["storage_used_bytes"] < info["storage_limit_bytes"]


def test_pg_backups_capture_list_and_restore(platform: Platform) -> None:
    url = platform.config()["DATABASE_URL"]
    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (id int)")
        connection.execute("DELETE FROM orders")
        connection.execute("INSERT INTO orders VALUES (1), (2)")
    assert "No backups." in ok(platform.berth("pg:backups", "-a", APP))

    captured = ok(platform.berth("pg:backups:capture", "-a", APP))
    assert "Backing up DATABASE" in captured and "done" in captured and "Backup b001 (" in captured
    listed = ok(platform.berth("pg:backups", "-a", APP))
    assert "ID" in listed and "Size" in listed and "b001" in listed and " MB" in listed
    assert [b["id"] for b in json.loads(ok(platform.berth("pg:backups", "-a", APP, "--json")))] == ["b001"]

    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute("DELETE FROM orders")
    refused = error_line(platform.berth("pg:backups:restore", "-a", APP))  # no tty, no --confirm
    assert f"--confirm {APP}" in refused and rows(url) == 0
    wrong = error_line(platform.berth("pg:backups:restore", "b001", "-a", APP, "--confirm", "other-app"))
    assert "did not match" in wrong and rows(url) == 0
    restored = ok(platform.berth("pg:backups:restore", "b001", "DATABASE", "-a", APP, "--confirm", APP))
    assert "Restoring b001 into DATABASE" in restored and rows(url) == 2

    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute("INSERT INTO orders VALUES (3)")
    ok(platform.berth("pg:backups:capture", "DATABASE", "-a", APP))
    with psycopg.connect(url, connect_timeout=5) as connection:
        connection.execute("DELETE FROM orders")
    assert "Restoring b002" in ok(platform.berth("pg:backups:restore", "-a", APP, "--confirm", APP))  # newest
    assert rows(url) == 3
    unknown = error_line(platform.berth("pg:backups:restore", "b999", "-a", APP, "--confirm", APP))
    assert "b999" in unknown or "backup" in unknown.lower()


def test_pg_backups_download_and_url(platform: Platform, tmp_path: Path) -> None:
    if not json.loads(ok(platform.berth("pg:backups", "-a", APP, "--json"))):
        ok(platform.berth("pg:backups:capture", "-a", APP))
    said = ok(platform.berth("pg:backups:download", "-a", APP, cwd=tmp_path))
    assert "latest.dump" in said and "done" in said
    assert (tmp_path / "latest.dump").read_bytes().startswith(b"PGDMP")
    chosen = tmp_path / "sub" / "first.dump"
    chosen.parent.mkdir()
    ok(platform.berth("pg:backups:download", "b001", "DATABASE", "-a", APP, "-o", str(chosen)))
    assert chosen.read_bytes().startswith(b"PGDMP")
    assert sorted(p.name for p in chosen.parent.iterdir()) == ["first.dump"]  # no .part left over

    url = ok(platform.berth("pg:backups:url", "b001", "-a", APP)).strip()
    assert requests.get(url, timeout=10).content.startswith(b"PGDMP")  # no credentials needed
    assert json.loads(ok(platform.berth("pg:backups:url", "-a", APP, "--json")))["expires_in"] > 0


def test_pg_psql(platform: Platform) -> None:
    missing = error_line(platform.berth("pg:psql", "-a", APP, env={"PATH": "/nonexistent"}))
    assert "psql is not installed" in missing
    if not shutil.which("psql"):
        pytest.skip("psql is not installed here: only its clear error was checked")
    ran = platform.berth("pg:psql", "-a", APP, input="SELECT 40 + 2 AS answer;\n")
    assert ran.returncode == 0, ran.stderr
    assert "answer" in ran.stdout and "42" in ran.stdout and "(1 row)" in ran.stdout
    assert "Connecting to DATABASE" in ran.stderr


def test_pg_credentials_rotate_needs_confirmation_and_changes_database_url(platform: Platform) -> None:
    before = platform.config()["DATABASE_URL"]
    refused = error_line(platform.berth("pg:credentials:rotate", "-a", APP))  # stdin is not a tty
    assert f"--confirm {APP}" in refused
    assert "did not match" in error_line(platform.berth("pg:credentials:rotate", "-a", APP, "--confirm", "x"))
    assert platform.config()["DATABASE_URL"] == before

    said = ok(platform.berth("pg:credentials:rotate", "DATABASE", "-a", APP, "--confirm", APP))
    assert "Rotating the credentials of DATABASE" in said and "done" in said
    after = platform.config()["DATABASE_URL"]
    assert after != before
    with psycopg.connect(after, connect_timeout=5) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


# ---- Redis ---------------------------------------------------------------------------------

def test_redis_maxmemory_and_info(platform: Platform) -> None:
    said = ok(platform.berth("redis:maxmemory", "-a", APP, "--policy", "allkeys-lru"))
    assert "to allkeys-lru" in said and "done" in said
    shown = ok(platform.berth("redis:info", "REDIS", "-a", APP))
    assert shown.startswith("=== REDIS (redis-") and "allkeys-lru" in shown and " MB" in shown
    assert json.loads(ok(platform.berth("redis:info", "-a", APP, "--json")))["maxmemory_policy"] == "allkeys-lru"


def test_redis_maxmemory_bad_policy_shows_the_servers_message(platform: Platform) -> None:
    bad = platform.berth("redis:maxmemory", "-a", APP, "--policy", "whatever")
    assert bad.returncode != 0
    line = error_line(bad)
    assert "whatever" in line and "allkeys-lru" in line  # the provider's own list of policies
    assert json.loads(ok(platform.berth("redis:info", "-a", APP, "--json")))["maxmemory_policy"] != "whatever"


def test_redis_cli(platform: Platform) -> None:
    missing = error_line(platform.berth("redis:cli", "-a", APP, env={"PATH": "/nonexistent"}))
    assert "redis-cli is not installed" in missing
    if not shutil.which("redis-cli"):
        pytest.skip("redis-cli is not installed here: only its clear error was checked")
    ran = platform.berth("redis:cli", "-a", APP, input="SET greeting hello\nGET greeting\n")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["OK", "hello"]
    assert "Warning" not in ran.stderr  # the password went through REDISCLI_AUTH, not the command line


# ---- addons:action and errors --------------------------------------------------------------

def test_addons_action_generic(platform: Platform) -> None:
    answer = json.loads(ok(platform.berth("addons:action", "REDIS", "maxmemory", "policy=volatile-lru",
                                          "-a", APP, "--json")))
    assert set(answer) == {"message", "result"}
    info = json.loads(ok(platform.berth("addons:action", "REDIS", "info", "-a", APP, "--json")))
    assert info["result"]["maxmemory_policy"] == "volatile-lru"
    shown = ok(platform.berth("addons:action", "DATABASE", "info", "-a", APP))
    assert "Running info on DATABASE" in shown and "Storage used:" in shown and " MB" in shown
    unknown = error_line(platform.berth("addons:action", "DATABASE", "explode", "-a", APP))
    assert "explode" in unknown
    bad = platform.berth("addons:action", "DATABASE", "info", "oops", "-a", APP)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_unknown_or_wrong_add_on_gives_a_clear_error(platform: Platform) -> None:
    line = error_line(platform.berth("pg:info", "NOPE", "-a", APP))
    assert f"{APP} has no add-on NOPE" in line and "addons:create heroku-postgresql" in line
    assert f"{APP} has no add-on nope" in error_line(platform.berth("addons:action", "nope", "info", "-a", APP))
    wrong_kind = error_line(platform.berth("pg:info", "REDIS", "-a", APP))
    assert "REDIS" in wrong_kind and "redis add-on" in wrong_kind and "Postgres" in wrong_kind
    assert "app" in error_line(platform.berth("pg:info", "-a", "no-such-app")).lower()


def test_kafka_topics_without_a_kafka_add_on(platform: Platform) -> None:
    line = error_line(platform.berth("kafka:topics", "-a", APP))
    assert f"{APP} has no add-on KAFKA" in line and "addons:create heroku-kafka" in line
    assert "has no add-on KAFKA" in error_line(
        platform.berth("kafka:topics:create", "events", "-a", APP, "--partitions", "2"))
