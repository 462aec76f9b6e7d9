"""buildpacks, buildpacks:add|set|remove|clear: Heroku's messages, the server's list, and every refusal
(exit 1, one line, the list left as it was)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, Server

NODE_URL = "https://github.com/heroku/heroku-buildpack-nodejs.git#v1"


def urls(server: Server, app: str) -> list[str]:
    found = server.api("GET", f"/apps/{app}/buildpack-installations").json()
    return [item["buildpack"]["url"] for item in sorted(found, key=lambda item: item["ordinal"])]


def test_add_set_list_remove_and_clear(berth: Berth, server: Server, app_name: str) -> None:
    empty = berth("buildpacks", "-a", app_name)
    assert empty.returncode == 0 and empty.stdout == f"{app_name} has no Buildpacks.\n"

    added = berth("buildpacks:add", "python", "-a", app_name)
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        f"Buildpack added. Next release on {app_name} will use heroku/python.",
        "Run git push berth main to create a new release using this buildpack."]
    assert berth("buildpacks", "-a", app_name).stdout == f"=== {app_name} Buildpack\nheroku/python\n"

    first = berth("buildpacks:add", "--index", "1", "procfile", "-a", app_name)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:3] == [f"Buildpack added. Next release on {app_name} will use:",
                                             "  1. heroku/procfile", "  2. heroku/python"]
    assert berth("buildpacks:add", "-i", "9", NODE_URL, "-a", app_name).returncode == 0  # past the end: last
    assert urls(server, app_name) == ["procfile", "python", NODE_URL]
    listed = berth("buildpacks", "-a", app_name)
    assert listed.stdout.splitlines() == [f"=== {app_name} Buildpacks", "1. heroku/procfile", "2. heroku/python",
                                          f"3. {NODE_URL}"]
    assert [b["ordinal"] for b in json.loads(berth("buildpacks", "-a", app_name, "--json").stdout)] == [0, 1, 2]

    assert berth("buildpacks:set", "-i", "2", "static", "-a", app_name).returncode == 0   # replaces python
    assert urls(server, app_name) == ["procfile", "static", NODE_URL]
    assert berth("buildpacks:set", "nodejs", "-a", app_name).returncode == 0              # default: index 1
    assert urls(server, app_name) == ["nodejs", "static", NODE_URL]

    by_url = berth("buildpacks:remove", NODE_URL, "-a", app_name)
    assert by_url.returncode == 0 and by_url.stdout.startswith("Buildpack removed. Next release on"), by_url.stderr
    assert berth("buildpacks:remove", "heroku/nodejs", "-a", app_name).returncode == 0  # by the name shown
    assert urls(server, app_name) == ["static"]
    last = berth("buildpacks:remove", "-i", "1", "-a", app_name)
    assert last.returncode == 0, last.stderr
    assert last.stdout == f"Buildpack removed. Next release on {app_name} will detect buildpacks normally.\n"
    assert urls(server, app_name) == []

    assert berth("buildpacks:add", "python", "-a", app_name).returncode == 0
    assert server.api("PATCH", f"/apps/{app_name}/config-vars",
                      json={"BUILDPACK_URL": "python"}).status_code == 200
    cleared = berth("buildpacks:clear", "-a", app_name)
    assert cleared.returncode == 0 and cleared.stdout == "Buildpacks cleared.\n"
    assert "BUILDPACK_URL config var is still set" in cleared.stderr
    assert urls(server, app_name) == []


def test_refusals_exit_1_with_the_reason_and_change_nothing(berth: Berth, server: Server, app_name: str,
                                                            one_error_line: ErrorLine) -> None:
    assert one_error_line(berth("buildpacks:remove", "python", "-a", app_name)) == (
        f"Error: No buildpacks were found. Next release on {app_name} will detect buildpack normally.")
    assert berth("buildpacks:add", "python", "-a", app_name).returncode == 0
    assert berth("buildpacks:add", "procfile", "-a", app_name).returncode == 0
    before = urls(server, app_name)

    refusals = {
        ("buildpacks:add", "python"): "Error: The buildpack python is already set on your app.",
        ("buildpacks:add", "heroku/procfile"): "Error: The buildpack heroku/procfile is already set on your app.",
        ("buildpacks:add", "-i", "0", "static"): "Error: Invalid index. Must be greater than 0.",
        ("buildpacks:set", "-i", "-1", "static"): "Error: Invalid index. Must be greater than 0.",
        ("buildpacks:remove", "-i", "3"): "Error: Invalid index. Please choose a value between 1 and 2.",
        ("buildpacks:remove", "-i", "1", "python"): "Error: Please choose either index or Buildpack, but not both.",
        ("buildpacks:remove", "static"): "Error: Buildpack not found. Nothing was removed.",
    }
    for args, message in refusals.items():
        assert one_error_line(berth(*args, "-a", app_name)) == message, args
    assert one_error_line(berth("buildpacks:remove", "-a", app_name)).startswith(
        "Error: Must specify a buildpack to remove, either by index or URL")
    # The server's own refusal (not a form it can use), word for word, exit 1.
    refused = one_error_line(berth("buildpacks:add", "heroku/ruby", "-a", app_name))
    assert "Buildpack heroku/ruby is not one Berth can use" in refused
    assert urls(server, app_name) == before


def test_unknown_app_is_refused(berth: Berth, one_error_line: ErrorLine) -> None:
    assert one_error_line(berth("buildpacks", "-a", "no-such-app-here")).endswith("(not_found)")
