"""addons and addons:* against a real server, broker worker and example partner (all processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.builtin_platform import wait_for_worker
from tests.live_server import ROOT, stop
from tests.partners.harness import ExamplePartner, run_example_partner

if TYPE_CHECKING:  # annotations only: pytest itself loads conftest
    from tests.cli.conftest import Berth, ErrorLine, NameMaker, Server

SERVICE = "example-partner"
ASYNC_DELAY = 4.0


@pytest.fixture(scope="module")
def partner(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplePartner]:
    base = tmp_path_factory.mktemp("cli-addons")
    # async_delay beyond the server's 3 s provision wait: async creations answer `provisioning`.
    with run_example_partner(base, service=SERVICE, async_delay=ASYNC_DELAY) as partner:
        manifest = base / "manifest.json"
        manifest.write_text(json.dumps(partner.manifest(requires=("attachable",))))
        registered = subprocess.run([sys.executable, "-m", "berth.admin", "register-addon", str(manifest)],
                                    cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60)
        assert registered.returncode == 0, registered.stderr
        with (base / "worker.log").open("wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "berth.worker"], cwd=ROOT, env=server.env,
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                wait_for_worker(server, worker)
                yield partner
            finally:
                stop(worker)


@pytest.fixture
def sync_partner(partner: ExamplePartner) -> ExamplePartner:
    partner.set_mode("sync")
    return partner


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def _create(berth: Berth, app: str, *args: str) -> dict:
    return json.loads(_ok(berth("addons:create", SERVICE, "-a", app, "--json", *args)))


def test_services_and_plans(berth: Berth, partner: ExamplePartner) -> None:
    listed = _ok(berth("addons:services")).splitlines()
    assert listed[0].split() == ["Slug", "Name", "State"]
    assert any(line.startswith(f"{SERVICE}  Example Partner") for line in listed[1:]), listed
    assert SERVICE in [s["name"] for s in json.loads(_ok(berth("addons:services", "--json")))]

    plans = _ok(berth("addons:plans", SERVICE)).splitlines()
    rows = [line.split() for line in plans[1:]]
    assert rows[0][0] == "default" and rows[0][1] == f"{SERVICE}:test" and rows[0][-1] == "free"
    assert rows[1][0] == f"{SERVICE}:premium" and rows[1][-1] == "$15/month"
    assert [p["name"] for p in json.loads(_ok(berth("addons:plans", SERVICE, "--json")))] == \
        [f"{SERVICE}:test", f"{SERVICE}:premium"]


def test_plans_of_unknown_service_is_one_error_line(berth: Berth, partner: ExamplePartner,
                                                   one_error_line: ErrorLine) -> None:
    one_error_line(berth("addons:plans", "no-such-service"))


def test_create_sync_then_list_and_info(berth: Berth, server: Server, sync_partner: ExamplePartner,
                                        app_name: str) -> None:
    out = _ok(berth("addons:create", SERVICE, "-a", app_name)).splitlines()
    addon = server.api("GET", f"/apps/{app_name}/addons").json()[0]
    assert addon["state"] == "provisioned"
    assert out[0] == f"Creating {addon['name']} on {app_name}... done"
    assert out[-1] == f"Created {addon['name']} as EXAMPLE_URL"
    assert "EXAMPLE_URL" in server.api("GET", f"/apps/{app_name}/config-vars").json()

    table = _ok(berth("addons", "-a", app_name)).splitlines()
    assert table[0].split() == ["Add-on", "Plan", "Price", "State"]
    assert table[1].split() == [addon["name"], f"{SERVICE}:test", "free", "provisioned"]
    everything = _ok(berth("addons")).splitlines()
    assert any(line.split() == [addon["name"], f"{SERVICE}:test", "free", "provisioned", app_name]
               for line in everything), everything
    assert [a["id"] for a in json.loads(_ok(berth("addons", "-a", app_name, "--json")))] == [addon["id"]]

    info = _ok(berth("addons:info", addon["name"])).splitlines()
    assert info[0] == f"=== {addon['name']}"
    assert f"Attachments:  {app_name}::EXAMPLE" in info
    assert f"Owning app:   {app_name}" in info
    assert f"Plan:         {SERVICE}:test" in info and "State:        provisioned" in info
    as_json = json.loads(_ok(berth("addons:info", addon["name"], "--json")))
    assert as_json["id"] == addon["id"] and [a["name"] for a in as_json["attachments"]] == ["EXAMPLE"]


def test_create_as_name_and_provider_options(berth: Berth, server: Server, sync_partner: ExamplePartner,
                                             app_name: str) -> None:
    out = _ok(berth("addons:create", f"{SERVICE}:premium", "--as", "CACHE", "-a", app_name,
                    "--", "--size", "large", "--fast"))
    assert out.splitlines()[-1].endswith(" as CACHE_URL"), out
    addon = server.api("GET", f"/apps/{app_name}/addons").json()[0]
    assert addon["plan"]["name"] == f"{SERVICE}:premium"
    assert "CACHE_URL" in server.api("GET", f"/apps/{app_name}/config-vars").json()
    assert "$15/month" in _ok(berth("addons", "-a", app_name))


def test_create_needs_confirmation_to_overwrite(berth: Berth, server: Server, sync_partner: ExamplePartner,
                                                app_name: str, one_error_line: ErrorLine) -> None:
    assert server.api("PATCH", f"/apps/{app_name}/config-vars", json={"EXAMPLE_URL": "mine"}).ok
    refused = one_error_line(berth("addons:create", SERVICE, "-a", app_name))
    assert f"--confirm {app_name}" in refused
    assert server.api("GET", f"/apps/{app_name}/addons").json() == []
    one_error_line(berth("addons:create", SERVICE, "-a", app_name, "--confirm", "someone-else"))
    assert server.api("GET", f"/apps/{app_name}/addons").json() == []
    made = _create(berth, app_name, "--confirm", app_name)
    assert made["state"] == "provisioned"
    assert server.api("GET", f"/apps/{app_name}/config-vars").json()["EXAMPLE_URL"] != "mine"


def test_wait_on_refused_provision_fails_with_partner_message(
        berth: Berth, server: Server, partner: ExamplePartner, app_name: str,
        one_error_line: ErrorLine) -> None:
    partner.set_mode("refusing")
    try:
        line = one_error_line(berth("addons:create", SERVICE, "-a", app_name, "--wait",
                                    "--wait-interval", "0.1"))
    finally:
        partner.set_mode("sync")
    assert line == "Error: That plan is not available in your region."
    assert "EXAMPLE_URL" not in server.api("GET", f"/apps/{app_name}/config-vars").json()


def test_async_provision_in_background_and_with_wait(berth: Berth, server: Server, partner: ExamplePartner,
                                                     app_name: str, new_name: NameMaker) -> None:
    other = new_name()
    assert server.api("POST", "/apps", json={"name": other}).status_code == 201
    partner.set_mode("async")
    try:
        background = _ok(berth("addons:create", SERVICE, "-a", other)).splitlines()
        assert background[0].endswith("... pending"), background
        assert "is being created in the background" in background[-1], background
        waited = _create(berth, app_name, "--wait", "--wait-interval", "0.2")
    finally:
        partner.set_mode("sync")
        server.api("DELETE", f"/apps/{other}")
    assert waited["state"] == "provisioned" and waited["config_vars"] == ["EXAMPLE_URL"]


def test_attach_and_detach_to_second_app(berth: Berth, server: Server, sync_partner: ExamplePartner,
                                         app_name: str, new_name: NameMaker) -> None:
    addon = _create(berth, app_name)
    other = new_name()
    assert server.api("POST", "/apps", json={"name": other}).status_code == 201
    try:
        out = _ok(berth("addons:attach", addon["name"], "-a", other, "--as", "SHARED_DB")).splitlines()
        assert out[0] == f"Attaching {addon['name']} as SHARED_DB to {other}... done"
        assert out[1].startswith(f"Setting SHARED_DB config vars and restarting {other}... done, v")
        assert "SHARED_DB_URL" in server.api("GET", f"/apps/{other}/config-vars").json()
        assert addon["name"] in _ok(berth("addons", "-a", other))
        info = _ok(berth("addons:info", addon["name"]))
        assert f"{other}::SHARED_DB" in info and f"{app_name}::EXAMPLE" in info

        out = _ok(berth("addons:detach", "SHARED_DB", "-a", other)).splitlines()
        assert out[0] == f"Detaching SHARED_DB to {addon['name']} from {other}... done"
        assert out[1].startswith(f"Unsetting SHARED_DB config vars and restarting {other}... done, v")
        assert "SHARED_DB_URL" not in server.api("GET", f"/apps/{other}/config-vars").json()
        assert "EXAMPLE_URL" in server.api("GET", f"/apps/{app_name}/config-vars").json()
    finally:
        server.api("DELETE", f"/apps/{other}")


def test_detach_unknown_attachment_is_one_error_line(berth: Berth, partner: ExamplePartner, app_name: str,
                                                    one_error_line: ErrorLine) -> None:
    one_error_line(berth("addons:detach", "NOPE", "-a", app_name))


def test_upgrade_and_downgrade(berth: Berth, server: Server, sync_partner: ExamplePartner,
                               app_name: str) -> None:
    addon = _create(berth, app_name)
    out = _ok(berth("addons:upgrade", addon["name"], "premium", "-a", app_name))
    assert out.splitlines()[0] == (f"Changing {addon['name']} on {app_name} from {SERVICE}:test "
                                   f"to {SERVICE}:premium... done"), out
    assert server.api("GET", f"/addons/{addon['id']}").json()["plan"]["name"] == f"{SERVICE}:premium"
    back = json.loads(_ok(berth("addons:downgrade", addon["name"], f"{SERVICE}:test", "--json")))
    assert back["plan"]["name"] == f"{SERVICE}:test"


def test_destroy_needs_the_right_confirmation(berth: Berth, server: Server, sync_partner: ExamplePartner,
                                              app_name: str, one_error_line: ErrorLine) -> None:
    addon = _create(berth, app_name)
    wrong = one_error_line(berth("addons:destroy", addon["name"], "--confirm", "nope"))
    assert "did not match" in wrong
    typed_wrong = berth("addons:destroy", addon["name"], input="nope\n")
    assert (typed_wrong.returncode, typed_wrong.stdout) == (1, "")
    assert typed_wrong.stderr.startswith("Warning: This will destroy ")
    assert typed_wrong.stderr.endswith(f"Error: Confirmation 'nope' did not match {app_name}. "
                                       "Nothing was destroyed.\n")
    assert server.api("GET", f"/addons/{addon['id']}").status_code == 200

    out = _ok(berth("addons:destroy", addon["name"], "-a", app_name, "--confirm", app_name, "--wait",
                    "--wait-interval", "0.1"))
    assert out == f"Destroying {addon['name']} on {app_name}... done\n"
    assert server.api("GET", f"/addons/{addon['id']}").status_code == 404
    assert "EXAMPLE_URL" not in server.api("GET", f"/apps/{app_name}/config-vars").json()
    assert _ok(berth("addons", "-a", app_name)) == f"No add-ons for app {app_name}.\n"


def test_destroy_by_typing_the_app_name(berth: Berth, server: Server, sync_partner: ExamplePartner,
                                        app_name: str) -> None:
    addon = _create(berth, app_name)
    gone = json.loads(_ok(berth("addons:destroy", addon["name"], "--json", input=f"{app_name}\n")))
    assert gone["id"] == addon["id"]
    assert server.api("GET", f"/addons/{addon['id']}").status_code == 404


def test_unknown_addon_is_one_error_line(berth: Berth, partner: ExamplePartner,
                                         one_error_line: ErrorLine) -> None:
    for command in ("addons:info", "addons:destroy"):
        assert "Couldn't find that add-on" in one_error_line(berth(command, "no-such-addon", "--confirm", "x")
                                                             if command == "addons:destroy"
                                                             else berth(command, "no-such-addon"))


def test_open_show_url(berth: Berth, sync_partner: ExamplePartner, app_name: str) -> None:
    addon = _create(berth, app_name)
    sso = json.loads(_ok(berth("addons:open", addon["name"], "-a", app_name, "--show-url")))
    assert sso["action"] == sync_partner.sso_url
    assert sso["method"].lower() == "post"
    assert sso["params"] and all(isinstance(v, str) for v in sso["params"].values())
