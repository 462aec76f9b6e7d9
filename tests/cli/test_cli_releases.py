"""releases, releases:info."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, NameMaker, Server


def test_releases_and_info(berth: Berth, server: Server, app_name: str) -> None:
    for n in range(2):
        assert berth("config:set", f"N={n}", "-a", app_name).returncode == 0
    api = server.api("GET", f"/apps/{app_name}/releases", headers={"Range": "version ..; order=desc"}).json()
    newest = api[0]["version"]

    result = berth("releases", "-a", app_name)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"=== {app_name} Releases - Current: v{newest}"
    rows = lines[1:]
    assert [r.split()[0] for r in rows] == [f"v{r['version']}" for r in api]
    assert rows[0].endswith("(current)") and "dev@example.com" in rows[0]
    assert not any(r.endswith("(current)") for r in rows[1:])

    one = berth("releases", "-n", "1", "-a", app_name)
    assert len(one.stdout.splitlines()) == 2
    listed = json.loads(berth("releases", "-a", app_name, "--json").stdout)
    assert [r["version"] for r in listed] == [r["version"] for r in api]

    info = berth("releases:info", "-a", app_name)
    assert info.returncode == 0, info.stderr
    assert info.stdout.splitlines()[0] == f"=== Release v{newest}"
    assert "By:      dev@example.com" in info.stdout and "Current: true" in info.stdout

    older = api[1]["version"]
    by_v = berth("releases:info", f"v{older}", "-a", app_name, "--json")
    assert by_v.returncode == 0, by_v.stderr
    assert json.loads(by_v.stdout)["version"] == older
    assert berth("releases:info", str(older), "-a", app_name).stdout.startswith(f"=== Release v{older}\n")


def test_unknown_release_is_one_line(berth: Berth, app_name: str, one_error_line: ErrorLine) -> None:
    assert one_error_line(berth("releases:info", "v9999", "-a", app_name)).endswith("(not_found)")


def test_rollback_to_the_previous_release_and_to_a_named_one(berth: Berth, server: Server, app_name: str) -> None:
    for mode in ("one", "two", "three"):
        assert berth("config:set", f"MODE={mode}", "-a", app_name).returncode == 0
    newest = server.api("GET", f"/apps/{app_name}/releases", headers={"Range": "version ..; order=desc"}).json()
    current = newest[0]["version"]

    back = berth("releases:rollback", "-a", app_name)
    assert back.returncode == 0, back.stderr
    assert back.stdout == f"Rolling back {app_name} to v{current - 1}... done, v{current + 1}\n"
    assert "Rollback affects code and config vars" in back.stderr
    assert f"To undo, run: berth releases:rollback v{current} -a {app_name}" in back.stderr
    assert server.api("GET", f"/apps/{app_name}/config-vars").json()["MODE"] == "two"

    named = berth("releases:rollback", f"v{current - 2}", "-a", app_name)
    assert named.returncode == 0, named.stderr
    assert named.stdout == f"Rolling back {app_name} to v{current - 2}... done, v{current + 2}\n"
    assert server.api("GET", f"/apps/{app_name}/config-vars").json()["MODE"] == "one"
    made = server.api("GET", f"/apps/{app_name}/releases/{current + 2}").json()
    assert made["description"] == f"Rollback to v{current - 2}" and made["current"]


def test_rollback_refusals(berth: Berth, server: Server, new_name: NameMaker, one_error_line: ErrorLine) -> None:
    name = new_name()
    assert server.api("POST", "/apps", json={"name": name}).status_code == 201
    try:
        before = server.api("GET", f"/apps/{name}/releases").json()
        assert len([r for r in before if r["eligible_for_rollback"]]) < 2
        assert one_error_line(berth("releases:rollback", "-a", name)) == (
            f"Error: No eligible release found for {name} to roll back to: it needs an earlier release that "
            "succeeded.")
        assert one_error_line(berth("releases:rollback", "v99", "-a", name)).endswith("(not_found)")
        assert one_error_line(berth("releases:rollback", "-a", "no-such-app-here")).endswith("(not_found)")
        assert server.api("GET", f"/apps/{name}/releases").json() == before
    finally:
        server.api("DELETE", f"/apps/{name}")
