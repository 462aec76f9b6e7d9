"""The official Heroku CLI's `domains` and `domains:add` against a live Berth."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("heroku-cli-domains")) as live:
        yield live


@pytest.fixture(scope="module")
def cli(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    key = server.create_user("domains-user@example.com")
    return heroku_cli(server.url, key, tmp_path_factory.mktemp("home"))


def test_domains_add_and_list(cli: HerokuCLI, server: LiveServer) -> None:
    cli.ok("apps:create", "domained")
    added = cli.run("domains:add", "www.heroku-cli-example.org", "-a", "domained")
    assert added.returncode == 0, added.stderr
    assert "domained.localhost" in added.stdout + added.stderr  # the DNS target it tells the user
    listed = cli.ok("domains", "-a", "domained")
    assert "domained.localhost" in listed and "www.heroku-cli-example.org" in listed
    stored = server.api("GET", "/apps/domained/domains", cli.api_key).json()
    assert [d["hostname"] for d in stored] == ["domained.localhost", "www.heroku-cli-example.org"]


def test_a_taken_domain_fails_with_the_servers_message(cli: HerokuCLI) -> None:
    cli.ok("apps:create", "second-domained")
    refused = cli.run("domains:add", "www.heroku-cli-example.org", "-a", "second-domained")
    assert refused.returncode != 0
    assert "currently in use by another app" in refused.stderr
