"""apps, apps:create, apps:info, apps:rename, apps:destroy."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, NameMaker, Server


def test_create_prints_urls_and_lists(berth: Berth, server: Server, new_name: NameMaker) -> None:
    name = new_name()
    try:
        result = berth("apps:create", name)
        assert result.returncode == 0, result.stderr
        first, second = result.stdout.splitlines()
        assert first == f"Creating {name}... done"
        web_url, git_url = second.split(" | ")
        assert git_url.endswith(f"/{name}.git") and web_url
        assert name in berth("apps").stdout.split()
        assert name in [a["name"] for a in json.loads(berth("apps", "--json").stdout)]
    finally:
        server.api("DELETE", f"/apps/{name}")


def test_create_without_name_json(berth: Berth, server: Server) -> None:
    result = berth("apps:create", "--json")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    server.api("DELETE", f"/apps/{created['id']}")
    assert created["name"] and created["owner"]["email"] == "dev@example.com"


def test_info(berth: Berth, app_name: str) -> None:
    result = berth("apps:info", "-a", app_name)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"=== {app_name}"
    fields = {k: v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert fields["Owner"] == "dev@example.com"
    assert fields["Git URL"].endswith(f"/{app_name}.git")
    assert fields["Maintenance"] == "off"
    assert {"Region", "Stack", "Web URL", "Created"} <= fields.keys()
    assert json.loads(berth("apps:info", "-a", app_name, "--json").stdout)["name"] == app_name


def test_rename(berth: Berth, server: Server, app_name: str, new_name: NameMaker) -> None:
    new = new_name()
    result = berth("apps:rename", new, "-a", app_name)
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"Renaming {app_name} to {new}... done\n")
        assert server.api("GET", f"/apps/{new}").status_code == 200
        assert server.api("GET", f"/apps/{app_name}").status_code == 404
    finally:
        server.api("DELETE", f"/apps/{new}")


def test_destroy_refuses_wrong_confirmation(berth: Berth, server: Server, app_name: str,
                                            one_error_line: ErrorLine) -> None:
    one_error_line(berth("apps:destroy", "-a", app_name, "--confirm", "something-else"))
    prompted = berth("apps:destroy", "-a", app_name, input="not-the-name\n")
    assert prompted.returncode == 1 and f"To proceed, type {app_name}" in prompted.stdout
    assert prompted.stderr.splitlines()[-1].startswith("Error: Confirmation 'not-the-name' did not match")
    assert server.api("GET", f"/apps/{app_name}").status_code == 200


def test_destroy_with_typed_name(berth: Berth, server: Server, app_name: str) -> None:
    result = berth("apps:destroy", "-a", app_name, input=f"{app_name}\n")
    assert result.returncode == 0, result.stderr
    assert f"Destroying {app_name} (including all add-ons)... done" in result.stdout
    assert server.api("GET", f"/apps/{app_name}").status_code == 404


def test_destroy_with_confirm_json(berth: Berth, server: Server, app_name: str) -> None:
    result = berth("apps:destroy", "-a", app_name, "--confirm", app_name, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == app_name
    assert server.api("GET", f"/apps/{app_name}").status_code == 404


def test_unknown_app_is_one_line(berth: Berth, one_error_line: ErrorLine) -> None:
    line = one_error_line(berth("apps:info", "-a", "no-such-app-here"))
    assert line.endswith("(not_found)")


def test_unknown_option_is_usage_error(berth: Berth) -> None:
    result = berth("apps", "--bogus")
    assert result.returncode == 2 and "No such option" in result.stderr


def test_no_app_is_usage_error(berth: Berth) -> None:
    result = berth("apps:info")  # HOME has no .berth file and is not a git repo
    assert result.returncode == 2 and "No app specified. Use -a APP" in result.stderr
