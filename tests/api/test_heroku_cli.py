"""The official Heroku CLI, unmodified, against a live Berth: the commands every user starts with."""
from __future__ import annotations

import io
import json
import os
import re
import tarfile
from typing import Iterator

import pytest
import requests

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


def test_apps_info_and_stack_show_berths_stack_and_the_current_slugs_size(cli: HerokuCLI, server: LiveServer) -> None:
    cli.ok("apps:create", "cli-stacked")
    info = cli.ok("apps:info", "-a", "cli-stacked")
    assert "berth-bookworm" in info and "Slug Size" in info
    assert "* berth-bookworm" in cli.ok("stack", "-a", "cli-stacked")
    cli.ok("stack:set", "heroku-24", "-a", "cli-stacked")  # Heroku's name for it: the same stack
    assert "next build" not in cli.ok("apps:info", "-a", "cli-stacked")
    slug = server.api("POST", "/apps/cli-stacked/slugs", cli.api_key,
                      json={"process_types": {"web": "x"}, "buildpack_provided_description": "Python"}).json()
    blob = gzip_tarball(6000)
    assert requests.put(slug["blob"]["url"], data=blob, headers={"Content-Type": ""}, timeout=30).status_code == 200
    assert server.api("POST", "/apps/cli-stacked/releases", cli.api_key, json={"slug": slug["id"]}).status_code == 201
    info = cli.ok("apps:info", "-a", "cli-stacked", "--json")
    assert json.loads(info)["app"]["slug_size"] == len(blob)
    assert json.loads(info)["app"]["buildpack_provided_description"] == "Python"
    assert re.search(rf"Slug Size: +{round(len(blob) / 1024)} KB\n", cli.ok("apps:info", "-a", "cli-stacked"))


def gzip_tarball(noise_bytes: int) -> bytes:
    """A slug of a Procfile and `noise_bytes` of incompressible data (its size is some KB)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("./app/Procfile", b"web: x\n"), ("./app/noise", os.urandom(noise_bytes))):
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()
