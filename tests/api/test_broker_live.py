"""The whole broker as it runs: gunicorn, a worker process, and a partner completing over HTTP."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest
import requests

from tests.heroku_cli import heroku_cli
from tests.live_server import ROOT, LiveServer, live_server
from tests.partners.harness import ExamplePartner, run_example_partner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, ExamplePartner, str]]:
    base = tmp_path_factory.mktemp("broker-live")
    with run_example_partner(base, async_delay=0.2) as partner, \
            live_server(base, workers=2, PROVISION_WAIT_SECONDS="15") as server:
        key = server.create_user("live@example.com")
        manifest = base / "manifest.json"
        manifest.write_text(json.dumps(partner.manifest()))
        registered = subprocess.run([sys.executable, "-m", "berth.admin", "register-addon", str(manifest)],
                                    cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60)
        assert registered.returncode == 0, registered.stderr
        log = (base / "worker.log").open("wb")
        worker = subprocess.Popen([sys.executable, "-m", "berth.worker"], cwd=ROOT, env=server.env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            # Ready once it listens for nudges (after its migrations and start-up pass).
            deadline = time.monotonic() + 30
            while not list((base / "data" / "run").glob("worker-*.sock")) and time.monotonic() < deadline:
                assert worker.poll() is None, (base / "worker.log").read_text()[-2000:]
                time.sleep(0.05)
            yield server, partner, key
        finally:
            worker.terminate()
            worker.wait(timeout=15)
            log.close()


def wait_for(server: LiveServer, key: str, addon_id: str, state: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        addon = server.api("GET", f"/addons/{addon_id}", key).json()
        if addon["state"] == state or time.monotonic() > deadline:
            return addon
        time.sleep(0.1)


def test_quick_provider_answers_provisioned_in_the_same_request(stack: tuple[LiveServer, ExamplePartner, str]) -> None:
    server, partner, key = stack
    partner.set_mode("sync")
    assert server.api("POST", "/apps", key, json={"name": "live-sync"}).status_code == 201
    response = server.api("POST", "/apps/live-sync/addons", key, json={"plan": "example-partner"})
    # Answered within the request's wait (generous, for a loaded machine): the worker was nudged.
    assert response.status_code == 201 and response.json()["state"] == "provisioned"
    assert set(server.api("GET", "/apps/live-sync/config-vars", key).json()) == {"EXAMPLE_URL"}


def test_async_partner_completes_through_the_partner_endpoints(stack: tuple[LiveServer, ExamplePartner, str]) -> None:
    server, partner, key = stack
    partner.set_mode("async")
    server.api("POST", "/apps", key, json={"name": "live-async"})
    created = server.api("POST", "/apps/live-async/addons", key, json={"plan": "example-partner"}).json()
    assert created["state"] == "provisioning"
    addon = wait_for(server, key, created["id"], "provisioned")
    assert addon["state"] == "provisioned", partner.log_text()[-2000:]
    assert partner.state()["async"][created["id"]]["status"] == "completed"
    assert set(server.api("GET", "/apps/live-async/config-vars", key).json()) == {"EXAMPLE_URL"}


def test_destroy_waits_for_the_deprovision(stack: tuple[LiveServer, ExamplePartner, str]) -> None:
    server, partner, key = stack
    partner.set_mode("sync")
    server.api("POST", "/apps", key, json={"name": "live-gone"})
    created = server.api("POST", "/apps/live-gone/addons", key, json={"plan": "example-partner"}).json()
    gone = server.api("DELETE", f"/apps/live-gone/addons/{created['id']}", key)
    assert gone.status_code == 200 and gone.json()["state"] == "deprovisioned"
    assert server.api("GET", f"/addons/{created['id']}", key).status_code == 404
    assert partner.state()["resources"][created["id"]]["state"] == "deprovisioned"
    assert requests.get(server.url + "/addon-services", timeout=5).status_code == 401


def test_a_refused_plan_change_is_a_422_with_the_providers_message(
        stack: tuple[LiveServer, ExamplePartner, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    server, partner, key = stack
    partner.set_mode("sync")
    server.api("POST", "/apps", key, json={"name": "live-upgrade"})
    addon = server.api("POST", "/apps/live-upgrade/addons", key, json={"plan": "example-partner"}).json()
    assert addon["state"] == "provisioned", addon
    partner.set_mode("refusing")
    refused = server.api("PATCH", f"/apps/live-upgrade/addons/{addon['name']}", key,
                         json={"plan": {"name": "example-partner:premium"}})
    assert refused.status_code == 422, refused.text
    assert refused.json() == {"id": "invalid_params", "message": "That plan is not available in your region."}
    assert server.api("GET", f"/addons/{addon['id']}", key).json()["plan"]["name"] == "example-partner:test"

    cli = heroku_cli(server.url, key, tmp_path_factory.mktemp("home"))
    upgrade = cli.run("addons:upgrade", addon["name"], "premium", "--app", "live-upgrade")
    assert upgrade.returncode != 0, upgrade.stdout
    assert "That plan is not available in your region." in upgrade.stderr
    assert server.api("GET", f"/addons/{addon['id']}", key).json()["plan"]["name"] == "example-partner:test"
