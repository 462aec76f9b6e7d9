"""The official Heroku CLI, unmodified, against a live Berth: the commands every user starts with."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("heroku-cli")) as live:
        yield live


@pytest.fixture(scope="module")
def cli(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    key = server.create_user("cli-user@example.com")
    return heroku_cli(server.url, key, tmp_path_factory.mktemp("home"))


def test_create_list_configure_and_destroy_an_app(cli: HerokuCLI, server: LiveServer) -> None:
    created = cli.run("apps:create", "cli-first-app")
    assert created.returncode == 0, created.stderr
    assert "cli-first-app" in created.stdout
    assert "cli-first-app" in cli.ok("apps")
    cli.ok("config:set", "GREETING=hello world", "-a", "cli-first-app")
    assert server.api("GET", "/apps/cli-first-app/config-vars", cli.api_key).json() == {"GREETING": "hello world"}
    assert "GREETING" in cli.ok("config", "-a", "cli-first-app")
    assert "v2" in cli.ok("releases", "-a", "cli-first-app")
    cli.ok("apps:destroy", "-a", "cli-first-app", "--confirm", "cli-first-app")
    assert server.api("GET", "/apps/cli-first-app", cli.api_key).status_code == 404


def test_an_unknown_app_fails_with_the_servers_message(cli: HerokuCLI) -> None:
    done = cli.run("config", "-a", "no-such-app-here")
    assert done.returncode != 0
    assert "Couldn't find that app" in done.stderr
