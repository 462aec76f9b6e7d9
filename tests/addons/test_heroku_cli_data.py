"""The official Heroku CLI's data commands (`pg:*`, `redis:*`), unmodified, against a live Berth
with its first-party add-ons: they find the database through /actions/addon-attachments/resolve and
ask the data API (HEROKU_DATA_HOST, here the API's own host) for details."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.heroku_cli import HerokuCLI, heroku_cli

pytestmark = pytest.mark.slow

APP = "data-cli-app"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltinPlatform]:
    # the embedded Postgres cluster: the one Berth runs itself, with TLS
    with builtin_platform(tmp_path_factory.mktemp("data-cli"), None, "data@example.com") as running:
        assert running.call("POST", "/apps", name=APP).status_code == 201
        yield running


@pytest.fixture(scope="module")
def cli(platform: BuiltinPlatform, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(platform.server.url, platform.key, tmp_path_factory.mktemp("home"))


def data_env(platform: BuiltinPlatform) -> dict[str, str]:
    """What a user sets (the README says so): the data API lives on Berth's API host, and the CLI
    must know Berth's service names instead of heroku-postgresql / heroku-redis."""
    return {"HEROKU_DATA_HOST": urlsplit(platform.server.url).hostname or "",
            "HEROKU_POSTGRESQL_ADDON_NAME": "postgresql", "HEROKU_REDIS_ADDON_NAME": "redis"}


def provisioned(platform: BuiltinPlatform, plan: str) -> dict[str, Any]:
    addon = platform.provision(APP, plan)
    assert addon["state"] == "provisioned", addon
    return addon


@pytest.fixture(scope="module")
def database(platform: BuiltinPlatform) -> dict[str, Any]:
    return provisioned(platform, "postgresql:essential-0")


def test_pg_info_shows_the_database(cli: HerokuCLI, platform: BuiltinPlatform, database: dict[str, Any]) -> None:
    shown = cli.ok("pg:info", "-a", APP, **data_env(platform))
    assert "DATABASE_URL" in shown
    assert "essential-0" in shown and f"Add-on:" in shown and database["name"] in shown
    assert "Available" in shown and "Data Size" in shown
    one = cli.ok("pg:info", "DATABASE", "-a", APP, **data_env(platform))
    assert database["name"] in one


def test_pg_credentials_and_url(cli: HerokuCLI, platform: BuiltinPlatform, database: dict[str, Any]) -> None:
    url = urlsplit(platform.config(APP)["DATABASE_URL"])
    listed = cli.ok("pg:credentials", "-a", APP, **data_env(platform))
    assert "default" in listed and "active" in listed
    assert url.password not in listed  # the listing never shows a password
    shown = cli.ok("pg:credentials:url", "DATABASE", "-a", APP, **data_env(platform))
    assert f"user={url.username} password={url.password} sslmode=require" in shown
    assert f"host={url.hostname} port={url.port}" in shown
    assert f"postgres://{url.username}:{url.password}@{url.hostname}:{url.port}/" in shown


def test_a_named_credential_is_refused_with_a_reason(cli: HerokuCLI, platform: BuiltinPlatform,
                                                     database: dict[str, Any]) -> None:
    done = cli.run("pg:credentials:url", "DATABASE", "-a", APP, "--name", "analyst", **data_env(platform))
    assert done.returncode != 0
    assert "only the `default` credential" in done.stderr


def test_data_api_is_only_for_who_can_see_the_addon(platform: BuiltinPlatform, database: dict[str, Any]) -> None:
    stranger = platform.server.create_user("stranger@example.com")
    for path in (f"/client/v11/databases/{database['id']}",
                 f"/postgres/v0/databases/{database['name']}/credentials/default"):
        answer = platform.server.api("GET", path, stranger)
        assert answer.status_code == 404 and answer.json()["id"] == "not_found"
        assert "password" not in answer.text
        assert platform.server.api("GET", path, "not-a-key").status_code == 401


def test_pg_info_for_an_app_without_databases(cli: HerokuCLI, platform: BuiltinPlatform) -> None:
    assert platform.call("POST", "/apps", name="data-cli-empty").status_code == 201
    shown = cli.ok("pg:info", "-a", "data-cli-empty", **data_env(platform))
    assert "has no heroku-postgresql databases" in shown


def test_pg_psql_connects_over_tls(cli: HerokuCLI, platform: BuiltinPlatform, database: dict[str, Any]) -> None:
    # The CLI sets PGSSLMODE=require for any host but `localhost`; the query proves the session is TLS.
    query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    done = cli.run("pg:psql", "-a", APP, "-c", query, **data_env(platform))
    assert done.returncode == 0, done.stderr
    assert "t" in done.stdout.split() and "--> Connecting to" in done.stderr
    made = cli.ok("pg:psql", "DATABASE_URL", "-a", APP, "-c", "CREATE TABLE notes (body text); "
                  "INSERT INTO notes VALUES ('over tls'); SELECT body FROM notes", **data_env(platform))
    assert "over tls" in made


def test_the_database_certificate_comes_from_berths_ca(platform: BuiltinPlatform, database: dict[str, Any]) -> None:
    # sslmode=verify-full: the chain leads to the installation's CA and names the host dialled
    ca = Path(platform.server.env["BERTH_DATA_DIR"]) / "ca" / "ca.pem"
    with psycopg.connect(platform.config(APP)["DATABASE_URL"], sslmode="verify-full", sslrootcert=str(ca),
                         connect_timeout=10) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


@pytest.fixture(scope="module")
def cache(platform: BuiltinPlatform) -> dict[str, Any]:
    return provisioned(platform, "redis:premium-0")


def test_redis_info_shows_the_instance(cli: HerokuCLI, platform: BuiltinPlatform, cache: dict[str, Any]) -> None:
    shown = cli.ok("redis:info", "-a", APP, **data_env(platform))
    assert f"=== {cache['name']} (REDIS_TLS_URL, REDIS_URL" in shown
    assert "premium-0" in shown and "Maxmemory" in shown and "noeviction" in shown
    assert "AOF" in shown
    as_json = json.loads(cli.ok("redis:info", "-a", APP, "--json", **data_env(platform)))
    assert [entry["name"] for entry in as_json] == [cache["name"]]
    assert as_json[0]["app"]["name"] == APP and "port" not in as_json[0]


def test_redis_cli_runs_commands_over_tls(cli: HerokuCLI, platform: BuiltinPlatform, cache: dict[str, Any]) -> None:
    assert platform.config(APP).get("REDIS_TLS_URL", "").startswith("rediss://")
    done = cli.run("redis:cli", cache["name"], "-a", APP, "--confirm", APP,
                   input="SET greeting hello\nGET greeting\n", **data_env(platform))
    assert done.returncode == 0, done.stderr
    assert f"Connecting to {cache['name']} (REDIS_TLS_URL, REDIS_URL" in done.stdout
    assert "hello" in done.stdout.split() and "Disconnected from instance." in done.stdout
