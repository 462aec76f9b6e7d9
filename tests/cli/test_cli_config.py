"""config, config:get, config:set, config:unset."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, Server


def _newest_version(server: Server, app_name: str) -> int:
    resp = server.api("GET", f"/apps/{app_name}/releases", headers={"Range": "version ..; order=desc,max=1"})
    return int(resp.json()[0]["version"])


def test_set_get_show_unset(berth: Berth, server: Server, app_name: str) -> None:
    result = berth("config:set", "A=1", "LONG_NAME=two words", "URL=pg://h/db?x=y", "-a", app_name)
    assert result.returncode == 0, result.stderr
    version = _newest_version(server, app_name)
    assert result.stdout.splitlines()[0] == \
        f"Setting A, LONG_NAME, URL and restarting {app_name}... done, v{version}"

    shown = berth("config", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"=== {app_name} Config Vars",
        "A:         1",
        "LONG_NAME: two words",
        "URL:       pg://h/db?x=y",
    ]
    assert json.loads(berth("config", "-a", app_name, "--json").stdout) == \
        {"A": "1", "LONG_NAME": "two words", "URL": "pg://h/db?x=y"}
    assert berth("config:get", "URL", "-a", app_name).stdout == "pg://h/db?x=y\n"
    missing = berth("config:get", "NOPE", "-a", app_name)
    assert (missing.returncode, missing.stdout) == (0, "")

    unset = berth("config:unset", "A", "URL", "-a", app_name)
    assert unset.returncode == 0, unset.stderr
    assert unset.stdout == f"Unsetting A, URL and restarting {app_name}... done, v{version + 1}\n"
    assert berth("config:get", "A", "-a", app_name).stdout == ""
    assert json.loads(berth("config:get", "LONG_NAME", "-a", app_name, "--json").stdout) == "two words"


def test_set_json_prints_config(berth: Berth, app_name: str) -> None:
    result = berth("config:set", "K=v", "-a", app_name, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["K"] == "v"


def test_bad_assignment_is_usage_error(berth: Berth, server: Server, app_name: str) -> None:
    result = berth("config:set", "NOEQUALS", "-a", app_name)
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr
    assert server.api("GET", f"/apps/{app_name}/config-vars").json() == {}


def test_empty_config(berth: Berth, app_name: str) -> None:
    result = berth("config", "-a", app_name)
    assert (result.returncode, result.stdout) == (0, f"{app_name} has no config vars.\n")
