"""domains, domains:add, domains:remove against a live server; refusals exit non-zero saying why."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth


def test_add_list_remove(berth: Berth, app_name: str) -> None:
    added = berth("domains:add", "www.cli-example.org", "-a", app_name)
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        f"Adding www.cli-example.org to {app_name}... done",
        f"Configure your app's DNS provider to point to the DNS Target {app_name}.localhost"]
    shown = berth("domains", "-a", app_name)
    assert shown.returncode == 0, shown.stderr
    assert f"{app_name}.localhost" in shown.stdout and "www.cli-example.org" in shown.stdout
    listed = json.loads(berth("domains", "-a", app_name, "--json").stdout)
    assert [(d["hostname"], d["kind"]) for d in listed] == [(f"{app_name}.localhost", "heroku"),
                                                            ("www.cli-example.org", "custom")]
    removed = berth("domains:remove", "www.cli-example.org", "-a", app_name)
    assert removed.returncode == 0, removed.stderr
    assert "www.cli-example.org" not in berth("domains", "-a", app_name).stdout


def test_a_bad_hostname_is_refused_with_the_reason(berth: Berth, app_name: str, one_error_line) -> None:
    refused = berth("domains:add", "not a host", "-a", app_name)
    assert refused.returncode != 0
    assert "host name" in one_error_line(refused)
