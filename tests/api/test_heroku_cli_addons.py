"""The official Heroku CLI, unmodified, on the first-party add-ons: sharing them between apps
(`addons:attach` / `addons:detach`), naming the first attachment (`--as`), opening their page
(`addons:open`), and who has access to an app (`access`)."""
from __future__ import annotations

import json
from typing import Iterator

import pytest

from berth.addons.postgres.cluster import LocalPostgres
from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.heroku_cli import HerokuCLI, heroku_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory,
             postgres_server: LocalPostgres) -> Iterator[BuiltinPlatform]:
    with builtin_platform(tmp_path_factory.mktemp("cli-addons"), postgres_server.admin_url(),
                          "cli-addons@example.com") as running:
        yield running


@pytest.fixture(scope="module")
def cli(platform: BuiltinPlatform, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(platform.server.url, platform.key, tmp_path_factory.mktemp("home"))


@pytest.fixture
def two_apps(platform: BuiltinPlatform, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    base = f"c{abs(hash(request.node.name)) % 10**7}"
    names = (f"{base}-owner", f"{base}-other")
    for name in names:
        assert platform.call("POST", "/apps", name=name).status_code == 201
    yield names
    for name in names:
        platform.call("DELETE", f"/apps/{name}")


@pytest.mark.parametrize(("plan", "var"), [("heroku-postgresql:essential-0", "DATABASE_URL"),
                                           ("heroku-redis:mini", "REDIS_URL")])
def test_a_first_party_addon_is_shared_with_another_app_and_detached(
        cli: HerokuCLI, platform: BuiltinPlatform, two_apps: tuple[str, str], plan: str, var: str) -> None:
    owner, other = two_apps
    addon = platform.provision(owner, plan)
    assert addon["state"] == "provisioned", addon
    service = platform.call("GET", f"/addon-services/{plan.split(':')[0]}").json()
    assert service["supports_sharing"] is True

    attached = cli.run("addons:attach", addon["name"], "-a", other, "--as", "SHARED")
    assert attached.returncode == 0, attached.stderr
    assert "SHARED" in attached.stderr + attached.stdout
    suffix = var.split("_", 1)[1]
    shared = platform.config(other)
    assert shared[f"SHARED_{suffix}"] == platform.config(owner)[var]
    assert addon["name"] in cli.ok("addons", "-a", other)

    detached = cli.run("addons:detach", "SHARED", "-a", other)
    assert detached.returncode == 0, detached.stderr
    assert f"SHARED_{suffix}" not in platform.config(other)
    assert var in platform.config(owner)  # the owner keeps its add-on


def test_addons_create_as_announces_the_attachments_var_names(
        cli: HerokuCLI, platform: BuiltinPlatform, two_apps: tuple[str, str]) -> None:
    owner, _ = two_apps
    created = cli.run("addons:create", "heroku-postgresql:essential-0", "-a", owner, "--as", "REPORTING",
                      "--wait")
    assert created.returncode == 0, created.stderr
    assert "as REPORTING_URL" in created.stdout, created.stdout
    assert "DATABASE_URL" not in created.stdout
    assert "REPORTING_URL" in platform.config(owner)


def test_addons_open_shows_the_addons_page_not_a_blank_line(
        cli: HerokuCLI, platform: BuiltinPlatform, two_apps: tuple[str, str]) -> None:
    owner, _ = two_apps
    addon = platform.provision(owner, "heroku-redis:mini")
    shown = cli.ok("addons:open", addon["name"], "-a", owner, "--show-url").strip()
    assert shown == f"{platform.server.url}/dashboard/apps/{owner}/addons/{addon['name']}"
    page = platform.server.api("GET", shown.removeprefix(platform.server.url), platform.key)
    assert page.status_code in (200, 302)  # the page, or the way to sign in to it


def test_access_lists_the_owner_first(cli: HerokuCLI, platform: BuiltinPlatform,
                                      two_apps: tuple[str, str]) -> None:
    owner_app, _ = two_apps
    platform.server.create_user("helper@example.com")
    cli.ok("access:add", "helper@example.com", "-a", owner_app)
    listed = json.loads(cli.ok("access", "-a", owner_app, "--json"))
    roles = {entry["user"]["email"]: entry["role"] for entry in listed}
    assert roles == {"cli-addons@example.com": "owner", "helper@example.com": "collaborator"}
    table = cli.ok("access", "-a", owner_app)
    assert "cli-addons@example.com" in table and "owner" in table
