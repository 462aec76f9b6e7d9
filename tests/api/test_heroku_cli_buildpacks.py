"""`heroku buildpacks[:set|add|remove|clear]` (official CLI) and heroku3's buildpack calls against a
live Berth."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
PY_URL = "https://github.com/heroku/heroku-buildpack-python.git#v1"
REGISTRY = "https://buildpack-registry.s3.amazonaws.com/buildpacks/heroku/{}.tgz"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("heroku-cli-buildpacks")) as live:
        yield live


@pytest.fixture(scope="module")
def cli(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    key = server.create_user("packs@example.com")
    cli = heroku_cli(server.url, key, tmp_path_factory.mktemp("home"))
    # The CLI asks Heroku's buildpack registry what `heroku/python` is; Berth answers in its place.
    registry = f"{server.url}/buildpack-registry"
    run = cli.run
    cli.run = lambda *args, **kw: run(*args, **{"HEROKU_BUILDPACK_REGISTRY_URL": registry, **kw})  # type: ignore[method-assign]
    return cli


def urls(server: LiveServer, cli: HerokuCLI, app: str) -> list[str]:
    found = server.api("GET", f"/apps/{app}/buildpack-installations", cli.api_key).json()
    return [item["buildpack"]["url"] for item in found]


def test_the_cli_sets_adds_removes_and_clears_buildpacks(cli: HerokuCLI, server: LiveServer) -> None:
    cli.ok("apps:create", "packs-cli", "--no-remote")
    cli.ok("buildpacks:set", "heroku/python", "-a", "packs-cli")
    assert urls(server, cli, "packs-cli") == [REGISTRY.format("python")]
    cli.ok("buildpacks:add", "--index", "1", "heroku/nodejs", "-a", "packs-cli")
    cli.ok("buildpacks:add", PY_URL, "-a", "packs-cli")
    assert urls(server, cli, "packs-cli") == [REGISTRY.format("nodejs"), REGISTRY.format("python"), PY_URL]
    listed = cli.ok("buildpacks", "-a", "packs-cli")
    assert "1. heroku/nodejs" in listed and "2. heroku/python" in listed and f"3. {PY_URL}" in listed
    cli.ok("buildpacks:remove", "heroku/python", "-a", "packs-cli")
    assert urls(server, cli, "packs-cli") == [REGISTRY.format("nodejs"), PY_URL]
    cli.ok("buildpacks:clear", "-a", "packs-cli")
    assert urls(server, cli, "packs-cli") == []


def test_the_cli_shows_berths_refusal(cli: HerokuCLI, server: LiveServer) -> None:
    cli.ok("apps:create", "packs-refused", "--no-remote")
    done = cli.run("buildpacks:set", "heroku/ruby", "-a", "packs-refused")
    assert done.returncode != 0
    assert "is not one Berth can use" in done.stderr
    assert urls(server, cli, "packs-refused") == []


def test_heroku3_updates_and_lists_buildpacks(cli: HerokuCLI, server: LiveServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import heroku3  # a pinned dev dependency (tests/api/test_heroku3.py fails loudly without it)

    monkeypatch.setattr(heroku3.api, "HEROKU_URL", server.url)  # copied when a client is built
    client = heroku3.from_key(cli.api_key)
    cli.ok("apps:create", "packs-h3", "--no-remote")
    app = client.app("packs-h3")
    assert app.update_buildpacks(["python", "procfile"]) is True
    assert [(b.ordinal, b.buildpack.url) for b in app.buildpacks()] == [(0, "python"), (1, "procfile")]
