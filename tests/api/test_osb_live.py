"""The Open Service Broker as it runs: gunicorn, the first-party add-ons, a worker process and a
partner process, driven over HTTP like a platform drives it; credentials from bindings used by
the real client libraries, and a worker killed with SIGKILL in the middle of a provision."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
import redis
import requests
from click.testing import CliRunner, Result

from berth.admin import main as admin_main
from berth.addons.postgres.cluster import LocalPostgres
from tests.builtin_platform import BuiltinPlatform, builtin_platform, wait_for_worker
from tests.kafka_clients import consume, produce
from tests.live_server import ROOT, stop

pytestmark = pytest.mark.slow
VERSION = {"X-Broker-API-Version": "2.17"}


class Stack:
    def __init__(self, platform: BuiltinPlatform, base: Path) -> None:
        self.platform, self.base = platform, base
        self.auth: tuple[str, str] = ("", "")
        self.workers: list[subprocess.Popen[bytes]] = []

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m berth.admin ARGS` as the operator runs it."""
        return subprocess.run([sys.executable, "-m", "berth.admin", *args], cwd=ROOT, env=self.platform.server.env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    def admin_here(self, *args: str) -> Result:
        """The same command in this process (no interpreter start-up), with the server's environment."""
        return CliRunner().invoke(admin_main, list(args), env=self.platform.server.env)

    def osb(self, method: str, path: str, body: Any = None, *, auth: tuple[str, str] | None = None,
            **query: str) -> requests.Response:
        return requests.request(method, f"{self.platform.server.url}/osb/v2{path}", json=body, params=query,
                                headers=VERSION, auth=auth or self.auth, timeout=60)

    def plan(self, service: str, plan: str) -> dict[str, str]:
        services = self.osb("GET", "/catalog").json()["services"]
        found = next(s for s in services if s["name"] == service)
        return {"service_id": found["id"], "plan_id": next(p["id"] for p in found["plans"] if p["name"] == plan)}

    def poll(self, path: str, timeout: float = 90) -> dict[str, Any]:
        """`last_operation` until it is no longer in progress (Retry-After is a hint; tests poll faster)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.osb("GET", path + "/last_operation")
            assert answer.status_code == 200, answer.text
            if answer.json()["state"] != "in progress" or time.monotonic() > deadline:
                return answer.json()  # type: ignore[no-any-return]
            assert answer.headers["Retry-After"].isdigit()
            time.sleep(0.1)

    def provision(self, ids: dict[str, str]) -> str:
        path = f"/service_instances/{uuid.uuid4()}"
        body = {**ids, "organization_guid": "org-live", "space_guid": "space-live",
                "context": {"platform": "cloudfoundry", "space_guid": "space-live"}}
        answer = self.osb("PUT", path, body, accepts_incomplete="true")
        assert answer.status_code == 202, answer.text
        assert self.poll(path)["state"] == "succeeded", self.platform.server.log.read_text()[-3000:]
        return path

    def bind(self, path: str, ids: dict[str, str]) -> dict[str, Any]:
        answer = self.osb("PUT", f"{path}/service_bindings/{uuid.uuid4()}", {**ids, "bind_resource": {"app_guid": "a"}})
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def deprovision(self, path: str, ids: dict[str, str]) -> None:
        answer = self.osb("DELETE", path, accepts_incomplete="true", **ids)
        assert answer.status_code in (200, 202), answer.text
        if answer.status_code == 202:
            assert self.poll(path)["state"] == "succeeded"
        assert self.osb("DELETE", path, accepts_incomplete="true", **ids).status_code == 410


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("osb-live")
    with builtin_platform(base, postgres_server.admin_url(), "osb-live@example.com") as platform:
        running = Stack(platform, base)
        made = running.admin("create-osb-client", "osb-live@example.com")
        assert made.returncode == 0, made.stderr
        lines = made.stdout.splitlines()
        assert len(lines) == 1 and made.stdout == lines[0] + "\n", made.stdout
        username, password = lines[0].split(":", 1)
        running.auth = (username, password)
        try:
            yield running
        finally:
            for worker in running.workers:
                stop(worker)


def test_admin_commands_make_list_and_revoke_platform_credentials(stack: Stack) -> None:
    listed = stack.admin_here("list-osb-clients")
    assert listed.exit_code == 0 and stack.auth[0] in listed.stdout and stack.auth[1] not in listed.stdout
    assert "osb-live@example.com" in listed.stdout
    made = stack.admin_here("create-osb-client", "osb-live@example.com")
    other = tuple(made.stdout.strip().split(":", 1))
    assert stack.osb("GET", "/catalog", auth=other).status_code == 200  # type: ignore[arg-type]
    assert stack.admin_here("revoke-osb-client", other[0]).exit_code == 0
    assert stack.osb("GET", "/catalog", auth=other).status_code == 401  # type: ignore[arg-type]
    unknown = stack.admin_here("revoke-osb-client", "osb-nobody")
    assert unknown.exit_code != 0 and "list-osb-clients" in unknown.stderr
    no_account = stack.admin_here("create-osb-client", "nobody@example.com")
    assert no_account.exit_code != 0 and "create-user" in no_account.stderr and not no_account.stdout


def test_postgres_shared_plan_is_synchronous_and_its_binding_connects(stack: Stack) -> None:
    ids = stack.plan("postgresql", "essential-0")
    path = f"/service_instances/{uuid.uuid4()}"
    body = {**ids, "organization_guid": "org-live", "space_guid": "space-live"}
    made = stack.osb("PUT", path, body)  # no accepts_incomplete: the shared plan answers in the request
    assert made.status_code == 201, made.text
    assert stack.osb("PUT", path, body).status_code == 200
    binding = f"{path}/service_bindings/{uuid.uuid4()}"
    bound = stack.osb("PUT", binding, {**ids, "bind_resource": {"app_guid": "a"}})  # no flag: binds are sync
    assert bound.status_code == 201, bound.text
    credentials = bound.json()["credentials"]
    assert credentials["uri"] == credentials["DATABASE_URL"]
    with psycopg.connect(credentials["DATABASE_URL"], connect_timeout=5) as connection:
        connection.execute("CREATE TABLE notes (body text)")
        connection.execute("INSERT INTO notes VALUES ('from a binding')")
        assert connection.execute("SELECT body FROM notes").fetchall() == [("from a binding",)]
    unbound = stack.osb("DELETE", binding, **ids)
    assert unbound.status_code == 200 and unbound.text.strip() == "{}"
    gone = stack.osb("DELETE", path, **ids)  # synchronous deprovision
    assert gone.status_code == 200 and gone.json() == {}
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(credentials["DATABASE_URL"], connect_timeout=5).close()
    assert stack.osb("GET", path + "/last_operation").json()["state"] == "succeeded"
    # With accepts_incomplete the shared plan still answers 201 when the worker is quick (no poll
    # to wait for), as the add-on API answers `provisioned` within its short wait.
    quick = f"/service_instances/{uuid.uuid4()}"
    made = stack.osb("PUT", quick, body, accepts_incomplete="true")
    assert made.status_code == 201 and "operation" not in made.json(), made.text
    assert stack.osb("GET", quick + "/last_operation").json()["state"] == "succeeded"
    stack.bind(quick, ids)
    stack.deprovision(quick, ids)


def test_redis_async_provision_and_its_binding_connects(stack: Stack) -> None:
    ids = stack.plan("redis", "mini")
    refused = stack.osb("PUT", f"/service_instances/{uuid.uuid4()}", {**ids, "organization_guid": "o", "space_guid": "s"})
    assert refused.status_code == 422 and refused.json()["error"] == "AsyncRequired"
    path = stack.provision(ids)
    credentials = stack.bind(path, ids)["credentials"]
    client = redis.Redis.from_url(credentials["REDIS_URL"], socket_timeout=5)
    client.set("greeting", "from a binding")
    assert client.get("greeting") == b"from a binding"
    client.close()
    stack.deprovision(path, ids)


def test_kafka_binding_produces_and_consumes(stack: Stack) -> None:
    ids = stack.plan("kafka", "basic-0")
    path = stack.provision(ids)
    credentials = stack.bind(path, ids)["credentials"]
    assert credentials["uri"] == credentials["KAFKA_URL"] and "BEGIN CERTIFICATE" in credentials["KAFKA_CLIENT_CERT"]
    # The instance is an add-on in its owner's account: topics are managed there, as for any add-on.
    dashboard = stack.osb("GET", path).json()["dashboard_url"]
    app, addon = dashboard.split("/dashboard/apps/")[1].split("/addons/")
    created = stack.platform.call("POST", f"/apps/{app}/addons/{addon}/actions/topics-create", params={"name": "events"})
    assert created.status_code == 200, created.text
    topic = created.json()["result"]["name"]
    assert produce(credentials, topic, b"order 17 paid") is None
    assert consume(credentials, topic, credentials["KAFKA_PREFIX"] + "billing") == b"order 17 paid"
    stack.deprovision(path, ids)


def test_logs_binding_gives_a_syslog_drain_url(stack: Stack) -> None:
    services = stack.osb("GET", "/catalog").json()["services"]
    logs = next(s for s in services if s["name"] == "logs")
    assert logs["requires"] == ["syslog_drain"]
    ids = {"service_id": logs["id"], "plan_id": logs["plans"][0]["id"]}
    path = stack.provision(ids)
    bound = stack.bind(path, ids)
    assert bound["syslog_drain_url"].startswith(("http", "syslog"))
    stack.deprovision(path, ids)


def test_worker_killed_during_an_async_provision_still_ends(stack: Stack, tmp_path: Path) -> None:
    """SIGKILL while the worker holds the provision (the partner is slow to answer); a new worker
    takes the abandoned operation up again, and the platform's polling ends."""
    from tests.partners.harness import run_example_partner

    with run_example_partner(tmp_path, mode="slow", slow_seconds=3, service="osb-slow-partner") as partner:
        manifest = tmp_path / "manifest.json"
        manifest.write_text(json.dumps(partner.manifest()))
        assert stack.admin_here("register-addon", str(manifest)).exit_code == 0
        ids = stack.plan("osb-slow-partner", "test")
        path = f"/service_instances/{uuid.uuid4()}"
        answer = stack.osb("PUT", path, {**ids, "organization_guid": "o", "space_guid": "s"}, accepts_incomplete="true")
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 30
        while partner.calls("provision") == 0:  # the worker is inside the call now
            assert time.monotonic() < deadline, "the worker never called the partner"
            time.sleep(0.05)
        run_dir = Path(stack.platform.server.env["BERTH_DATA_DIR"]) / "run"
        [socket] = run_dir.glob("worker-*.sock")
        os.kill(int(socket.stem.split("-")[1]), signal.SIGKILL)
        assert stack.osb("GET", path + "/last_operation").json()["state"] == "in progress"
        partner.set_mode("sync")
        socket.unlink()
        log = (tmp_path / "worker2.log").open("wb")
        worker = subprocess.Popen([sys.executable, "-m", "berth.worker"], cwd=ROOT, env=stack.platform.server.env,
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        stack.workers.append(worker)
        wait_for_worker(stack.platform.server, worker)
        finished = stack.poll(path, timeout=60)
        assert finished["state"] in ("succeeded", "failed")
        assert finished["state"] == "succeeded", finished  # the call carries the uuid: retrying it is safe
        stack.deprovision(path, ids)
