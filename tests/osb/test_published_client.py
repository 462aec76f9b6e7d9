"""Berth's broker driven by a published OSB client it did not write: the Kubernetes service catalog's
Go library (tests/osb/published_client.py), against a live Berth with its first-party add-ons and a
worker, signed in with a platform credential from `python -m berth.admin create-osb-client`. The
library decodes every answer into its own types and classifies errors with its own helpers, so
what it accepts is what a deployed platform built on it accepts."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from berth.addons.postgres.cluster import LocalPostgres
from berth.jobs.wakeup import NudgeListener
from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.live_server import ROOT
from tests.osb.published_client import PublishedClient, published_client
from tests.partners.harness import run_example_partner

pytestmark = pytest.mark.slow
EMAIL = "platform-owner@example.com"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres) -> Iterator[BuiltinPlatform]:
    with builtin_platform(tmp_path_factory.mktemp("osb-client"), postgres_server.admin_url(), EMAIL,
                          tls=True) as running:
        yield running


@pytest.fixture(scope="module")
def client(platform: BuiltinPlatform) -> PublishedClient:
    """Over https, trusting Berth's CA, as a platform registers a broker."""
    made = published_client(platform.server, EMAIL)
    assert made.broker_url.startswith("https://") and made.ca_file is not None
    return made


def berth_ids(platform: BuiltinPlatform, service: str) -> tuple[str, dict[str, str]]:
    """The add-on service's UUID and its plans' UUIDs by bare name, from Berth's own API."""
    service_id = platform.call("GET", f"/addon-services/{service}").json()["id"]
    plans = platform.call("GET", f"/addon-services/{service}/plans").json()
    return service_id, {plan["name"].split(":", 1)[1]: plan["id"] for plan in plans}


@pytest.fixture(scope="module")
def postgres(platform: BuiltinPlatform) -> tuple[str, dict[str, str]]:
    return berth_ids(platform, "postgresql")


def new_id() -> str:
    return str(uuid.uuid4())


def test_the_client_reads_the_catalogue_with_berths_ids_and_bare_names(
        client: PublishedClient, platform: BuiltinPlatform, postgres: tuple[str, dict[str, str]]) -> None:
    service_id, plan_ids = postgres
    for version in ("2.13", "2.14"):
        services = {s["name"]: s for s in client.at(version).ok("catalog")["services"]}
        assert {"postgresql", "redis", "kafka", "logs"} <= set(services), version
        offered = services["postgresql"]
        assert offered["id"] == service_id and offered["bindable"] is True
        assert {plan["name"]: plan["id"] for plan in offered["plans"]} == plan_ids
        if version == "2.14":
            assert offered["instances_retrievable"] is True and offered["bindings_retrievable"] is True
    redis_id, _ = berth_ids(platform, "redis")
    assert services["redis"]["id"] == redis_id


@pytest.mark.parametrize("version, plan, asynchronous", [
    ("2.13", "essential-1", True), ("2.14", "essential-1", True),  # async only: a 202, polled
    ("2.14", "essential-0", False)])  # the plan a platform may provision synchronously: a 201
def test_provision_bind_unbind_deprovision_shared_postgres(
        client: PublishedClient, postgres: tuple[str, dict[str, str]], version: str, plan: str,
        asynchronous: bool) -> None:
    broker = client.at(version)
    service_id, plan_ids = postgres
    instance, binding = new_id(), new_id()
    target = {"instance": instance, "service": service_id, "plan": plan_ids[plan]}

    made = broker.ok("provision", **target, accepts_incomplete=asynchronous)
    if asynchronous:
        assert made["async"] is True and made["operation"], made  # a 202 with an operation to poll
        polled = made["last_operation"]  # by the library's PollLastOperation, as a platform polls
        assert polled["state"] == "succeeded", polled
        assert all(poll["state"] in ("in progress", "succeeded") for poll in polled["polls"]), polled
    else:
        assert made["async"] is False and "last_operation" not in made, made
    if version == "2.14":
        fetched = broker.ok("get-instance", instance=instance)
        assert (fetched["service_id"], fetched["plan_id"]) == (service_id, plan_ids[plan])

    bound = broker.ok("bind", **target, binding=binding)  # no accepts_incomplete, as platforms bind
    assert bound["async"] is False, bound
    credentials = bound["credentials"]
    assert credentials["uri"] == credentials["DATABASE_URL"] and credentials["uri"].startswith("postgres")
    if version == "2.14":
        assert broker.ok("get-binding", instance=instance, binding=binding)["credentials"] == credentials
    with psycopg.connect(credentials["uri"], connect_timeout=5) as connection:
        connection.execute("CREATE TABLE notes (body text)")
        connection.execute("INSERT INTO notes VALUES ('from a platform')")
        assert connection.execute("SELECT body FROM notes").fetchall() == [("from a platform",)]

    assert broker.ok("unbind", **target, binding=binding)["async"] is False
    if version == "2.14":
        gone = broker.refused("get-binding", instance=instance, binding=binding)
        assert gone["status"] == 404, gone

    removed = broker.ok("deprovision", **target, accepts_incomplete=asynchronous)
    if removed["async"]:
        assert removed["last_operation"]["state"] == "succeeded", removed
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(credentials["uri"], connect_timeout=5).close()
    # The platform's orphan mitigation repeats deletes: the library takes the 410 as done.
    assert broker.ok("deprovision", **target, accepts_incomplete=asynchronous) == {"async": False, "operation": None}


def test_a_plan_change_polled_with_the_old_plan_and_a_rebind_with_another_plan(
        client: PublishedClient, postgres: tuple[str, dict[str, str]]) -> None:
    """The library polls a plan change with the plan before it (as the spec tells platforms to), takes
    a repeated bind as the same binding, and one of the same id with another plan as its Conflict."""
    service_id, plan_ids = postgres
    target = {"instance": new_id(), "service": service_id, "plan": plan_ids["essential-1"]}
    binding = new_id()
    assert client.ok("provision", **target, accepts_incomplete=True)["last_operation"]["state"] == "succeeded"
    try:
        first = client.ok("bind", **target, binding=binding)
        assert client.ok("bind", **target, binding=binding) == first  # a platform's retry: the same answer
        changed = client.ok("update", **target, new_plan=plan_ids["essential-2"], accepts_incomplete=True)
        assert changed["async"] is True and changed["last_operation"]["state"] == "succeeded", changed
        assert client.ok("get-instance", instance=target["instance"])["plan_id"] == plan_ids["essential-2"]
        again = client.refused("bind", **{**target, "plan": plan_ids["essential-2"]}, binding=binding)
        assert again["kind"] == "Conflict" and again["status"] == 409, again
        with psycopg.connect(first["credentials"]["uri"], connect_timeout=5) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)  # the change kept the database
    finally:
        client.ok("deprovision", **{**target, "plan": plan_ids["essential-2"]}, accepts_incomplete=True)


@pytest.mark.parametrize("credential", ["wrong password", "unknown user"])
def test_wrong_credentials_are_the_clients_401(client: PublishedClient, credential: str) -> None:
    intruder = (client.signed_in_as(client.username, "not-the-password") if credential == "wrong password"
                else client.signed_in_as("nobody", client.password))
    refused = intruder.refused("catalog")
    assert refused["kind"] == "HTTPStatusCodeError" and refused["status"] == 401, refused


def test_the_client_refuses_a_broker_it_cannot_verify(client: PublishedClient) -> None:
    refused = client.trusting(None).refused("catalog")
    assert refused["kind"] == "ClientError" and "certificate" in refused["message"], refused


def test_an_async_only_plan_without_accepts_incomplete_is_the_clients_async_required(
        client: PublishedClient, postgres: tuple[str, dict[str, str]]) -> None:
    """The library recognises AsyncRequired only by its exact error and description."""
    service_id, plan_ids = postgres
    instance = new_id()
    target = {"instance": instance, "service": service_id, "plan": plan_ids["essential-1"]}
    refused = client.refused("provision", **target, accepts_incomplete=False)
    assert refused["kind"] == "AsyncRequired" and refused["status"] == 422, refused
    assert client.refused("get-instance", instance=instance)["status"] == 404  # nothing was made

    made = client.ok("provision", **target, accepts_incomplete=True)
    assert made["last_operation"]["state"] == "succeeded", made
    try:
        no_op = client.refused("update", **target, accepts_incomplete=False)  # a no-op PATCH
        assert no_op["kind"] == "AsyncRequired", no_op
    finally:
        client.ok("deprovision", **target, accepts_incomplete=True)


def test_a_plan_of_another_service_is_refused_and_nothing_is_made(
        client: PublishedClient, platform: BuiltinPlatform, postgres: tuple[str, dict[str, str]]) -> None:
    service_id, _ = postgres
    _, redis_plans = berth_ids(platform, "redis")
    instance = new_id()
    refused = client.refused("provision", instance=instance, service=service_id,
                             plan=next(iter(redis_plans.values())), accepts_incomplete=True)
    assert refused["kind"] == "HTTPStatusCodeError" and refused["status"] == 400, refused
    assert refused.get("description"), refused  # says what was wrong
    assert client.refused("get-instance", instance=instance)["status"] == 404


def test_deleting_what_was_never_made_is_done_for_the_client(
        client: PublishedClient, postgres: tuple[str, dict[str, str]]) -> None:
    service_id, plan_ids = postgres
    target = {"instance": new_id(), "service": service_id, "plan": plan_ids["essential-0"]}
    assert client.ok("deprovision", **target, accepts_incomplete=True) == {"async": False, "operation": None}
    assert client.ok("unbind", **target, binding=new_id()) == {"async": False, "operation": None}


def test_an_async_provision_wakes_the_workers_at_once(
        client: PublishedClient, platform: BuiltinPlatform, postgres: tuple[str, dict[str, str]]) -> None:
    """The 202 of an async-only plan must reach a worker at once, as Berth's own POST
    /apps/{app}/addons does (a datagram to each worker's socket, berth.jobs.wakeup), not at the
    worker's next poll up to a second later: else a platform's provision → last_operation → bind
    takes ~0.5 s more than the add-on API's (bench/osb.py --plan essential-1). This test listens
    beside the worker, as a worker would."""
    service_id, plan_ids = postgres
    target = {"instance": new_id(), "service": service_id, "plan": plan_ids["essential-1"]}
    assert platform.call("POST", "/apps", name="osb-nudge-control").status_code == 201
    listener = NudgeListener(Path(platform.server.env["BERTH_DATA_DIR"]))
    try:
        listener.wait(0.01)  # nothing queued before this test counts
        addon = platform.call("POST", "/apps/osb-nudge-control/addons", plan="postgresql:essential-1").json()
        assert listener.wait(2.0), "Berth's own add-on API did not nudge the workers: the listener is broken"
        listener.wait(0.5)  # its outcome's signals
        made = client.ok("provision", **target, accepts_incomplete=True, wait=False)
        assert made["async"] is True, made
        assert listener.wait(2.0), "the OSB provision's 202 queued a job without waking any worker"
    finally:
        listener.close()
        platform.call("DELETE", "/apps/osb-nudge-control")
    # The identical replay: 200 once the woken worker has provisioned it, else a 202 polled to the end.
    done = client.ok("provision", **target, accepts_incomplete=True)
    assert not done["async"] or done["last_operation"]["state"] == "succeeded", (done, addon)
    client.ok("deprovision", **target, accepts_incomplete=True)


def test_a_partners_async_provision_through_the_partner_api(
        client: PublishedClient, platform: BuiltinPlatform, tmp_path: Path) -> None:
    """A third party's service is in the broker's catalogue too, and its provision goes through the
    partner API: the partner answers 202 and completes later through Berth's partner endpoints, while
    the library polls; a bind meanwhile is refused with a ConcurrencyError, not bound half-made."""
    with run_example_partner(tmp_path, mode="async", service="osb-client-partner", async_delay=2) as partner:
        manifest = tmp_path / "manifest.json"
        manifest.write_text(json.dumps(partner.manifest()))
        registered = subprocess.run([sys.executable, "-m", "berth.admin", "register-addon", str(manifest)], cwd=ROOT,
                                    env=platform.server.env, capture_output=True, text=True, timeout=60)
        assert registered.returncode == 0, registered.stderr
        service_id, plan_ids = berth_ids(platform, partner.service)
        offered = {s["id"]: s for s in client.ok("catalog")["services"]}
        assert {plan["name"] for plan in offered[service_id]["plans"]} == {"test", "premium"}
        target = {"instance": new_id(), "service": service_id, "plan": plan_ids["test"]}
        binding = new_id()

        made = client.ok("provision", **target, accepts_incomplete=True, wait=False)
        assert made["async"] is True, made
        early = client.refused("bind", **target, binding=binding)
        assert (early["status"], early.get("error")) == (422, "ConcurrencyError"), early
        done = client.ok("provision", **target, accepts_incomplete=True)  # the replay: 202 again, polled
        assert done["operation"] == made["operation"] and done["last_operation"]["state"] == "succeeded", done
        assert client.ok("bind", **target, binding=binding)["credentials"]["EXAMPLE_URL"].startswith(
            "https://example-partner.invalid/r/")
        client.ok("unbind", **target, binding=binding)
        client.ok("deprovision", **target, accepts_incomplete=True)
        assert partner.calls("deprovision") == 1
