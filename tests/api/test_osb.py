"""The Open Service Broker endpoints (`specs/osbapi.md`) through Flask's client, against the
example partner (a real process) and a worker the tests drive: every row of the idempotency and
concurrency tables, version gating, and the bad input of issue 13."""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import uuid
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import event, func, select, text

from berth.broker import catalogue
from berth.broker.models import AddOn, AddonService
from berth.broker.osb import clients
from berth.broker.osb.models import OsbBinding, OsbInstance
from berth.config import Settings
from berth.jobs.worker import Worker
from berth.worker import make_worker
from tests.conftest import Api, User, basic
from tests.partners.harness import ExamplePartner

# Protocol checks touch no database feature: SQLite alone keeps them fast. The state tables run on both.
protocol_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ASYNC_REQUIRED = "This service plan requires client support for asynchronous service operations."
PLAN_KEYS_2_13 = {"id", "name", "description", "metadata", "free", "bindable", "schemas"}


class Osb:
    """A platform speaking OSB to the app under test."""

    def __init__(self, api: Api, username: str, password: str, version: str = "2.17") -> None:
        self.api, self.auth, self.version = api, basic(username, password), version

    def call(self, method: str, path: str, body: Any = None, *, version: str | None = None,
             headers: dict[str, str] | None = None, raw: str | None = None, **query: Any) -> Any:
        sent = {"Authorization": self.auth, "X-Broker-API-Version": version or self.version, **(headers or {})}
        if body is not None or raw is not None:
            sent.setdefault("Content-Type", "application/json")
        return self.api.client.open("/osb/v2" + path, method=method, headers=sent, query_string=query,
                                    data=raw if raw is not None else (json.dumps(body) if body is not None else None))


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The partner's premium plan is served synchronously (as the shared Postgres plan is by default)."""
    return settings.with_overrides(osb_sync_plans=("example-partner:premium",), osb_sync_wait_seconds=20.0)


@pytest.fixture
def worker(app: Flask) -> Worker:
    return make_worker(app.extensions["berth.database"], app.config["BERTH_SETTINGS"])


@pytest.fixture
def catalog_ids(app: Flask, partner: ExamplePartner) -> dict[str, str]:
    partner.set_mode("sync")
    with app.extensions["berth.database"].transaction() as session:
        service = catalogue.register_manifest(session, partner.manifest(), owner=None)
        other = catalogue.register_manifest(session, partner.manifest("other-partner"), owner=None)
        plans = {plan.name: plan.id for plan in service.plans}
        return {"service": service.id, "test": plans["test"], "premium": plans["premium"],
                "other_service": other.id, "other_plan": other.plans[0].id}


@pytest.fixture
def owner(api: Api) -> User:
    return api.make_user("platform-owner@example.com")


@pytest.fixture
def platform(app: Flask, api: Api, owner: User) -> Osb:
    with app.extensions["berth.database"].transaction() as session:
        made = clients.create_client(session, owner.email)
    return Osb(api, made.username, made.password)


def provision_body(ids: dict[str, str], plan: str = "test", **extra: Any) -> dict[str, Any]:
    return {"service_id": ids["service"], "plan_id": ids[plan], "organization_guid": "org-1",
            "space_guid": "space-1", "context": {"platform": "cloudfoundry", "space_guid": "space-1"}, **extra}


def delete_query(ids: dict[str, str], plan: str = "test") -> dict[str, str]:
    return {"service_id": ids["service"], "plan_id": ids[plan]}


def count(app: Flask, model: Any) -> int:
    with app.extensions["berth.database"].session(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def partner_record(app: Flask, partner: ExamplePartner, instance: str) -> dict[str, Any]:
    """What the partner holds for the instance (its add-on's uuid is the partner's key)."""
    with app.extensions["berth.database"].session(write=False) as session:
        found = session.get(OsbInstance, instance)
        assert found is not None
        return partner.state()["resources"][found.addon_id]  # type: ignore[no-any-return]


def provisioned(platform: Osb, ids: dict[str, str], worker: Worker, instance: str | None = None) -> str:
    instance = instance or str(uuid.uuid4())
    made = platform.call("PUT", f"/service_instances/{instance}", provision_body(ids), accepts_incomplete="true")
    assert made.status_code == 202, made.get_json()
    worker.drain()
    assert platform.call("GET", f"/service_instances/{instance}/last_operation").get_json()["state"] == "succeeded"
    return instance


# -- authentication, versions, headers ---------------------------------------------------------------

@protocol_only
def test_credentials_are_checked_before_anything_else(api: Api, platform: Osb, app: Flask) -> None:
    for headers in ({}, {"Authorization": basic("osb-nobody", "x")},
                    {"Authorization": platform.auth[:-4] + "AAA="}, {"Authorization": "Bearer abc"}):
        # No version header and a broken body too: 401 still comes first.
        answer = api.client.put("/osb/v2/service_instances/x", headers=headers, data="{not json")
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert set(answer.get_json()) == {"description"}
    assert platform.call("GET", "/catalog").status_code == 200
    username = base64.b64decode(platform.auth.split()[1]).decode().split(":")[0]
    with app.extensions["berth.database"].transaction() as session:
        clients.revoke_client(session, username)
    assert platform.call("GET", "/catalog").status_code == 401


@protocol_only
def test_version_header_missing_or_unsupported_is_412(api: Api, platform: Osb) -> None:
    for version in (None, "", "2.12", "1.0", "3.0", "2", "2.x", "latest"):
        headers = {"Authorization": platform.auth}
        if version is not None:
            headers["X-Broker-API-Version"] = version
        answer = api.client.get("/osb/v2/catalog", headers=headers)
        assert answer.status_code == 412 and answer.get_json()["description"], version
    for version in ("2.13", "2.14", "2.15", "2.16", "2.17", "2.18"):
        assert platform.call("GET", "/catalog", version=version).status_code == 200, version


@protocol_only
def test_identity_headers_are_logged_and_request_identity_echoed(platform: Osb, catalog_ids: dict[str, str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    identity = "cloudfoundry " + base64.b64encode(json.dumps({"user_id": "u-683ea748"}).encode()).decode()
    with caplog.at_level(logging.INFO, logger="berth.osb"):
        answer = platform.call("GET", "/catalog", headers={"X-Broker-API-Originating-Identity": identity,
                                                           "X-Broker-API-Request-Identity": "req-5f2b"})
    assert answer.status_code == 200 and answer.headers["X-Broker-API-Request-Identity"] == "req-5f2b"
    assert "u-683ea748" in caplog.text and "req-5f2b" in caplog.text
    bad = platform.call("GET", "/catalog", headers={"X-Broker-API-Originating-Identity": "cloudfoundry %%%"})
    assert bad.status_code == 400


@protocol_only
def test_unknown_paths_answer_osb_json(platform: Osb) -> None:
    for method in ("GET", "POST", "PATCH"):
        answer = platform.call(method, "/nothing/here")
        assert answer.status_code == 404 and set(answer.get_json()) == {"description"}


# -- catalog -------------------------------------------------------------------------------------------

@protocol_only
def test_catalog_lists_services_and_plans_by_uuid_and_bare_slug(platform: Osb, catalog_ids: dict[str, str],
                                                                partner: ExamplePartner) -> None:
    services = platform.call("GET", "/catalog").get_json()["services"]
    service = next(s for s in services if s["id"] == catalog_ids["service"])
    assert service["name"] == "example-partner" and service["bindable"] is True
    assert service["instances_retrievable"] is True and service["bindings_retrievable"] is True
    assert service["plan_updateable"] is True
    plans = {plan["name"]: plan for plan in service["plans"]}
    assert set(plans) == {"test", "premium"} and plans["premium"]["id"] == catalog_ids["premium"]
    assert plans["premium"]["metadata"]["costs"] == [{"amount": {"usd": 15.0}, "unit": "MONTHLY"}]
    assert plans["test"]["free"] is True and plans["premium"]["free"] is False
    assert plans["test"]["maintenance_info"]["version"].count(".") == 2
    assert plans["test"]["schemas"]["service_instance"]["create"]["parameters"]["$schema"]
    # The partner has SSO: CF gets a dashboard client (never the partner's own secret).
    client = service["dashboard_client"]
    assert client["id"] == "berth-example-partner" and client["redirect_uri"].endswith("/dashboard")
    assert len(client["secret"]) == 64 and client["secret"] != partner.client_secret


@protocol_only
def test_catalog_at_2_13_has_only_2_13_fields_and_never_null(platform: Osb, catalog_ids: dict[str, str]) -> None:
    text = platform.call("GET", "/catalog", version="2.13").get_data(as_text=True)
    assert "null" not in text
    for service in json.loads(text)["services"]:
        assert "instances_retrievable" not in service and "allow_context_updates" not in service
        for plan in service["plans"]:
            assert set(plan) <= PLAN_KEYS_2_13, set(plan) - PLAN_KEYS_2_13
    at_14 = platform.call("GET", "/catalog", version="2.14").get_json()["services"][0]
    assert at_14["instances_retrievable"] is True and "maintenance_info" not in at_14["plans"][0]


# -- provision, its idempotency table, bind, unbind, deprovision ---------------------------------------

def test_async_lifecycle_through_every_idempotency_row(app: Flask, platform: Osb, catalog_ids: dict[str, str],
                                                      worker: Worker, partner: ExamplePartner, owner: User,
                                                      api: Api) -> None:
    ids, instance = catalog_ids, str(uuid.uuid4())
    path = f"/service_instances/{instance}"
    made = platform.call("PUT", path, provision_body(ids), accepts_incomplete="true")
    assert made.status_code == 202
    operation = made.get_json()["operation"]
    assert made.get_json()["dashboard_url"].endswith("/addons/" + made.get_json()["dashboard_url"].rsplit("/", 1)[1])
    # provisioning, same: 202 with the original operation; different: 409.
    again = platform.call("PUT", path, provision_body(ids), accepts_incomplete="true")
    assert again.status_code == 202 and again.get_json()["operation"] == operation
    assert platform.call("PUT", path, provision_body(ids, plan="premium"), accepts_incomplete="true").status_code == 409
    assert platform.call("PUT", path, provision_body(ids, space_guid="space-2"),
                         accepts_incomplete="true").status_code == 409
    polled = platform.call("GET", path + "/last_operation", operation=operation)
    assert polled.status_code == 200 and polled.get_json()["state"] == "in progress"
    assert polled.headers["Retry-After"].isdigit()
    assert platform.call("GET", path).status_code == 404  # still provisioning
    bind_during = platform.call("PUT", path + "/service_bindings/b-early", {"service_id": ids["service"],
                                                                            "plan_id": ids["test"]})
    assert bind_during.status_code == 422 and bind_during.get_json()["error"] == "ConcurrencyError"
    worker.drain()
    assert platform.call("GET", path + "/last_operation", operation=operation).get_json()["state"] == "succeeded"
    # ready, same (with or without the flag): 200; different: 409.
    for flag in ("true", "false"):
        ready = platform.call("PUT", path, provision_body(ids), accepts_incomplete=flag)
        assert ready.status_code == 200 and "operation" not in ready.get_json()
    assert platform.call("PUT", path, provision_body(ids, parameters={"size": "2"}),
                         accepts_incomplete="true").status_code == 409
    fetched = platform.call("GET", path).get_json()
    assert fetched["service_id"] == ids["service"] and fetched["plan_id"] == ids["test"]
    assert fetched["maintenance_info"]["version"] and fetched["parameters"] == {}
    # The instance is an add-on of the client's owner, on an app for the CF space.
    assert partner_record(app, partner, instance)["state"] == "provisioned"
    listed = api.get("/addons", owner).get_json()
    assert [addon["state"] for addon in listed] == ["provisioned"]
    assert listed[0]["app"]["name"].startswith("osb-")

    binding = path + "/service_bindings/b-1"
    bind_body = {"service_id": ids["service"], "plan_id": ids["test"], "bind_resource": {"app_guid": "app-1"}}
    bound = platform.call("PUT", binding, bind_body)
    assert bound.status_code == 201
    credentials = bound.get_json()["credentials"]
    assert credentials["EXAMPLE_URL"].startswith("https://example-partner.invalid/r/")
    assert credentials["uri"] == credentials["EXAMPLE_URL"]
    assert platform.call("PUT", binding, bind_body).get_json() == bound.get_json()
    assert platform.call("PUT", binding, bind_body).status_code == 200
    assert platform.call("PUT", binding, {**bind_body, "plan_id": ids["premium"]}).status_code == 409
    assert platform.call("GET", binding).get_json()["credentials"] == credentials
    assert platform.call("GET", binding + "/last_operation").get_json()["state"] == "succeeded"
    with app.extensions["berth.database"].session(write=False) as session:
        stored = session.scalar(text("SELECT credentials FROM osb_bindings"))  # raw: not decrypted
    assert stored and "example-partner.invalid" not in stored  # encrypted at rest
    assert platform.call("DELETE", binding).status_code == 400  # service_id, plan_id required
    unbound = platform.call("DELETE", binding, **delete_query(ids))
    assert unbound.status_code == 200 and unbound.get_data(as_text=True).strip() == "{}"
    assert platform.call("DELETE", binding, **delete_query(ids)).status_code == 410
    assert platform.call("GET", binding).status_code == 404
    assert platform.call("PUT", binding, bind_body).status_code == 409  # ids are not reused

    assert platform.call("DELETE", path).status_code == 400
    assert platform.call("DELETE", path, **delete_query(ids)).get_json()["error"] == "AsyncRequired"
    gone = platform.call("DELETE", path, **delete_query(ids), accepts_incomplete="true")
    assert gone.status_code == 202
    repeat = platform.call("DELETE", path, **delete_query(ids), accepts_incomplete="true")
    assert repeat.status_code == 202 and repeat.get_json() == gone.get_json()
    # deprovisioning, same: ConcurrencyError; different: 409.
    busy = platform.call("PUT", path, provision_body(ids), accepts_incomplete="true")
    assert busy.status_code == 422 and busy.get_json()["error"] == "ConcurrencyError"
    assert platform.call("PUT", path, provision_body(ids, plan="premium"), accepts_incomplete="true").status_code == 409
    assert platform.call("GET", path + "/last_operation").get_json()["state"] == "in progress"
    worker.drain()
    assert platform.call("GET", path + "/last_operation").get_json() == {"state": "succeeded",
                                                                         "description": "Deprovisioned."}
    assert partner_record(app, partner, instance)["state"] == "deprovisioned"
    assert platform.call("DELETE", path, **delete_query(ids), accepts_incomplete="true").status_code == 410
    # deleted, tombstone kept: 409 for any PUT.
    assert platform.call("PUT", path, provision_body(ids), accepts_incomplete="true").status_code == 409
    assert platform.call("GET", path).status_code == 404


@protocol_only
def test_async_plan_without_the_flag_is_async_required_and_writes_nothing(
        app: Flask, platform: Osb, catalog_ids: dict[str, str]) -> None:
    for flag in ({}, {"accepts_incomplete": "false"}):
        answer = platform.call("PUT", "/service_instances/i-sync", provision_body(catalog_ids), **flag)
        assert answer.status_code == 422
        assert answer.get_json() == {"error": "AsyncRequired", "description": ASYNC_REQUIRED}
    assert count(app, OsbInstance) == 0 and count(app, AddOn) == 0


@protocol_only
def test_bad_provisions_get_the_spec_status_and_change_nothing(app: Flask, platform: Osb,
                                                               catalog_ids: dict[str, str]) -> None:
    ids, good = catalog_ids, provision_body(catalog_ids)
    without = lambda *keys: {k: v for k, v in good.items() if k not in keys}  # noqa: E731
    cases: list[tuple[str, dict[str, Any], str | None, dict[str, str], int]] = [
        ("i-bad", good, '{"service_id": ', {}, 400),                      # malformed JSON
        ("i-bad", good, "[]", {}, 400),                                    # not an object
        ("i-bad", good, json.dumps(good), {"Content-Type": "text/plain"}, 400),
        ("i-bad", without("service_id"), None, {}, 400),
        ("i-bad", without("plan_id"), None, {}, 400),
        ("i-bad", {**good, "service_id": str(uuid.uuid4())}, None, {}, 400),
        ("i-bad", {**good, "plan_id": str(uuid.uuid4())}, None, {}, 400),
        ("i-bad", {**good, "plan_id": ids["other_plan"]}, None, {}, 400),  # a plan of another service
        ("i-bad", {**good, "parameters": {"size": {"gb": 2}}}, None, {}, 400),
        ("i-bad", {**good, "parameters": {"size": 2}}, None, {}, 400),
        ("i-bad", {**good, "parameters": {"2size": "2"}}, None, {}, 400),
        ("i-bad", {**good, "parameters": "size=2"}, None, {}, 400),
        ("i-bad", without("organization_guid", "space_guid"), None, {}, 400),
        ("i%20bad'", good, None, {}, 400),                                 # odd characters
        ("i" * 256, good, None, {}, 400),
        ("i-bad", {**good, "maintenance_info": {"version": "99.0.0"}}, None, {}, 422),
        ("i-bad", {**good, "maintenance_info": {"version": "Invalid"}}, None, {}, 422),
    ]
    for instance, body, raw, headers, status in cases:
        answer = platform.call("PUT", f"/service_instances/{instance}", body if raw is None else None,
                               raw=raw, headers=headers, accepts_incomplete="true")
        assert answer.status_code == status, (body, raw, answer.get_json())
        assert answer.get_json()["description"]
        if status == 422:
            assert answer.get_json()["error"] == "MaintenanceInfoConflict"
    assert count(app, OsbInstance) == 0 and count(app, AddOn) == 0


@protocol_only
def test_unknown_fields_are_ignored_and_a_lenient_platform_may_omit_guids(
        app: Flask, api: Api, owner: User, catalog_ids: dict[str, str], worker: Worker) -> None:
    with app.extensions["berth.database"].transaction() as session:
        made = clients.create_client(session, owner.email, lenient_org_space=True)
    kubernetes = Osb(api, made.username, made.password, version="2.13")
    body = {"service_id": catalog_ids["service"], "plan_id": catalog_ids["test"], "x-vendor": {"a": 1},
            "context": {"platform": "kubernetes", "namespace": "shop", "clusterid": "c-1"}}
    answer = kubernetes.call("PUT", "/service_instances/k-1", body, accepts_incomplete="true")
    assert answer.status_code == 202
    assert "null" not in answer.get_data(as_text=True)


@protocol_only
def test_deletes_of_unknown_things_are_410(platform: Osb, catalog_ids: dict[str, str], worker: Worker) -> None:
    query = delete_query(catalog_ids)
    assert platform.call("DELETE", "/service_instances/nope", **query, accepts_incomplete="true").status_code == 410
    assert platform.call("DELETE", "/service_instances/nope/service_bindings/b", **query).status_code == 410
    assert platform.call("GET", "/service_instances/nope/last_operation").status_code == 404
    assert platform.call("PATCH", "/service_instances/nope", {"service_id": catalog_ids["service"]},
                         accepts_incomplete="true").status_code == 404
    assert platform.call("PUT", "/service_instances/nope/service_bindings/b",
                         {"service_id": catalog_ids["service"], "plan_id": catalog_ids["test"]}).status_code == 404


def test_another_platforms_instance_is_not_visible(app: Flask, api: Api, platform: Osb, catalog_ids: dict[str, str],
                                                   worker: Worker) -> None:
    instance = provisioned(platform, catalog_ids, worker)
    bob = api.make_user("bob@example.com")
    with app.extensions["berth.database"].transaction() as session:
        made = clients.create_client(session, bob.email)
    other = Osb(api, made.username, made.password)
    assert other.call("GET", f"/service_instances/{instance}").status_code == 404
    assert other.call("DELETE", f"/service_instances/{instance}", **delete_query(catalog_ids),
                      accepts_incomplete="true").status_code == 410
    assert other.call("PUT", f"/service_instances/{instance}", provision_body(catalog_ids),
                      accepts_incomplete="true").status_code == 409
    assert platform.call("GET", f"/service_instances/{instance}").status_code == 200


@protocol_only
def test_bind_refusals(platform: Osb, catalog_ids: dict[str, str], worker: Worker) -> None:
    ids = catalog_ids
    instance = provisioned(platform, ids, worker)
    binding = f"/service_instances/{instance}/service_bindings/"
    good = {"service_id": ids["service"], "plan_id": ids["test"]}
    for body in ({**good, "plan_id": ids["premium"]}, {**good, "service_id": ids["other_service"]},
                 {**good, "parameters": {"role": "admin"}}, {"service_id": ids["service"]},
                 {**good, "predecessor_binding_id": "b-0"}):
        assert platform.call("PUT", binding + "b-x", body).status_code == 400, body
    assert platform.call("PUT", binding + "b%20x", good).status_code == 400
    assert platform.call("PUT", binding + "b-x", good).status_code == 201


@contextlib.contextmanager
def statements_run(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app runs while the block runs (the list may be cleared in between)."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE reaches listeners, psycopg's does not
            statements.append(statement)

    engines = app.extensions["berth.database"].engines
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def test_a_bind_costs_four_statements(app: Flask, platform: Osb, catalog_ids: dict[str, str], worker: Worker) -> None:
    """A bind is on a platform's hot path (bench/osb.py): the platform admitted; the client in the
    request's session; the instance, its add-on with the service and the binding if it exists, in one
    statement; the binding inserted. A replay reads and writes nothing more. (A provider with grants
    adds, after its call, the instance read again and the insert instead.)"""
    ids = catalog_ids
    instance = provisioned(platform, ids, worker)
    binding = f"/service_instances/{instance}/service_bindings/b-1"
    good = {"service_id": ids["service"], "plan_id": ids["test"]}
    with statements_run(app) as statements:
        made = platform.call("PUT", binding, good)
        first = list(statements)
        statements.clear()
        again = platform.call("PUT", binding, good)
    assert made.status_code == 201 and again.status_code == 200 and again.get_json() == made.get_json()
    assert len(first) == 4, "\n".join(first)
    assert len(statements) == 3, "\n".join(statements)


@protocol_only
def test_a_partner_without_grants_shares_its_credentials_and_a_failed_grant_binds_nothing(
        app: Flask, platform: Osb, catalog_ids: dict[str, str], worker: Worker, partner: ExamplePartner) -> None:
    """The example partner does not declare `grants`: its bindings carry the add-on's own config.
    Declared but not served (the partner has no grants route), a bind is refused with a reason
    and leaves no binding; a binding made before the flag still unbinds (nothing to revoke)."""
    ids = catalog_ids
    instance = provisioned(platform, ids, worker)
    binding = f"/service_instances/{instance}/service_bindings/"
    good = {"service_id": ids["service"], "plan_id": ids["test"]}
    first, second = platform.call("PUT", binding + "b-1", good), platform.call("PUT", binding + "b-2", good)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["credentials"] == second.get_json()["credentials"]  # shared, as today
    with app.extensions["berth.database"].transaction() as session:
        service = session.get(AddonService, ids["service"])
        assert service is not None
        service.requires = ["grants"]
    refused = platform.call("PUT", binding + "b-3", good)
    assert refused.status_code == 422, refused.get_json()
    assert "credentials" in refused.get_json()["description"]
    assert platform.call("GET", binding + "b-3").status_code == 404
    assert platform.call("PUT", binding + "b-3", good).status_code == refused.status_code  # nothing recorded
    assert platform.call("DELETE", binding + "b-1", **delete_query(ids)).status_code == 200
    assert platform.call("GET", binding + "b-1").status_code == 404


# -- update ----------------------------------------------------------------------------------------------

def test_update_rows(app: Flask, platform: Osb, catalog_ids: dict[str, str], worker: Worker, partner: ExamplePartner) -> None:
    ids = catalog_ids
    instance = provisioned(platform, ids, worker)
    path = f"/service_instances/{instance}"
    noop = {"service_id": ids["service"]}
    refused = platform.call("PATCH", path, noop)
    assert refused.status_code == 422 and refused.get_json() == {"error": "AsyncRequired", "description": ASYNC_REQUIRED}
    assert platform.call("PATCH", path, noop, accepts_incomplete="true").status_code == 200
    assert platform.call("PATCH", path, {"plan_id": ids["premium"]}, accepts_incomplete="true").status_code == 400
    assert platform.call("PATCH", path, {**noop, "plan_id": ids["other_plan"]}, accepts_incomplete="true").status_code == 400
    assert platform.call("PATCH", path, {**noop, "parameters": {"size": "9"}}, accepts_incomplete="true").status_code == 422
    conflict = platform.call("PATCH", path, {**noop, "maintenance_info": {"version": "Invalid"}}, accepts_incomplete="true")
    assert conflict.status_code == 422 and conflict.get_json()["error"] == "MaintenanceInfoConflict"
    change = {**noop, "plan_id": ids["premium"], "previous_values": {"plan_id": ids["test"]}}
    started = platform.call("PATCH", path, change, accepts_incomplete="true")
    assert started.status_code == 202
    operation = started.get_json()["operation"]
    repeat = platform.call("PATCH", path, change, accepts_incomplete="true")
    assert repeat.status_code == 202 and repeat.get_json()["operation"] == operation
    other = platform.call("PATCH", path, {**noop, "plan_id": ids["test"]}, accepts_incomplete="true")
    assert other.status_code == 422 and other.get_json()["error"] == "ConcurrencyError"
    assert platform.call("GET", path).get_json()["error"] == "ConcurrencyError"
    busy = platform.call("PUT", path, provision_body(ids), accepts_incomplete="true")
    assert busy.status_code == 422 and busy.get_json()["error"] == "ConcurrencyError"
    assert platform.call("PUT", path, provision_body(ids, plan="premium"), accepts_incomplete="true").status_code == 409
    busy_delete = platform.call("DELETE", path, **delete_query(ids), accepts_incomplete="true")
    assert busy_delete.status_code == 422 and busy_delete.get_json()["error"] == "ConcurrencyError"
    busy_bind = platform.call("PUT", path + "/service_bindings/b-during-update", {"service_id": ids["service"],
                                                                                "plan_id": ids["test"]})
    assert busy_bind.status_code == 422 and busy_bind.get_json()["error"] == "ConcurrencyError"
    # The platform polls with the plan from before the change.
    assert platform.call("GET", path + "/last_operation", plan_id=ids["test"]).get_json()["state"] == "in progress"
    worker.drain()
    assert platform.call("GET", path + "/last_operation", plan_id=ids["test"]).get_json()["state"] == "succeeded"
    assert platform.call("GET", path).get_json()["plan_id"] == ids["premium"]
    assert partner_record(app, partner, instance)["plan"] == "premium"


@protocol_only
def test_failed_update_reports_usable_only_from_2_16(platform: Osb, catalog_ids: dict[str, str], worker: Worker,
                                                    partner: ExamplePartner) -> None:
    ids = catalog_ids
    instance = provisioned(platform, ids, worker)
    path = f"/service_instances/{instance}"
    partner.set_mode("refusing")
    assert platform.call("PATCH", path, {"service_id": ids["service"], "plan_id": ids["premium"]},
                         accepts_incomplete="true").status_code == 202
    worker.drain()
    at_16 = platform.call("GET", path + "/last_operation").get_json()
    assert at_16["state"] == "failed" and at_16["instance_usable"] is True and at_16["description"]
    at_13 = platform.call("GET", path + "/last_operation", version="2.13").get_json()
    assert set(at_13) == {"state", "description"}
    assert platform.call("GET", path).get_json()["plan_id"] == ids["test"]


# -- failure, orphan mitigation, cancellation ---------------------------------------------------------------

def test_failed_provision_then_the_platforms_orphan_mitigation(app: Flask, platform: Osb, catalog_ids: dict[str, str],
                                                               worker: Worker, partner: ExamplePartner) -> None:
    ids, instance = catalog_ids, "i-orphan"
    path = f"/service_instances/{instance}"
    partner.set_mode("malformed-json")  # the partner made the resource, but its answer is unusable
    assert platform.call("PUT", path, provision_body(ids), accepts_incomplete="true").status_code == 202
    worker.drain(limit=1)
    assert partner_record(app, partner, instance)["state"] == "provisioned"  # the orphan
    failed = platform.call("GET", path + "/last_operation").get_json()
    assert failed["state"] == "failed" and failed["description"]
    assert platform.call("PUT", path, provision_body(ids), accepts_incomplete="true").status_code == 409
    assert platform.call("PUT", path + "/service_bindings/b", {"service_id": ids["service"],
                                                              "plan_id": ids["test"]}).status_code == 422
    partner.set_mode("sync")
    # The platform deletes what failed (no accepts_incomplete: a failed instance is deleted at once).
    mitigation = platform.call("DELETE", path, **delete_query(ids))
    assert mitigation.status_code == 200 and mitigation.get_json() == {}
    worker.drain()
    assert partner_record(app, partner, instance)["state"] == "deprovisioned"
    assert platform.call("DELETE", path, **delete_query(ids)).status_code == 410
    assert platform.call("GET", path + "/last_operation").get_json()["state"] == "succeeded"


def test_delete_while_a_partner_provisions_asynchronously(app: Flask, platform: Osb, catalog_ids: dict[str, str],
                                                         worker: Worker, partner: ExamplePartner) -> None:
    """The partner accepted the provision (202) and has not finished: the DELETE is accepted and
    tears it down; polling reports the delete."""
    ids, path = catalog_ids, "/service_instances/i-async-delete"
    partner.set_mode("async")
    assert platform.call("PUT", path, provision_body(ids), accepts_incomplete="true").status_code == 202
    worker.drain()
    assert partner_record(app, partner, "i-async-delete")["state"] == "provisioning"
    assert platform.call("GET", path + "/last_operation").get_json()["state"] == "in progress"
    assert platform.call("DELETE", path, **delete_query(ids)).get_json()["error"] == "AsyncRequired"
    accepted = platform.call("DELETE", path, **delete_query(ids), accepts_incomplete="true")
    assert accepted.status_code == 202 and accepted.get_json()["operation"]
    worker.drain()
    assert platform.call("GET", path + "/last_operation").get_json()["state"] == "succeeded"
    assert partner_record(app, partner, "i-async-delete")["state"] == "deprovisioned"


def test_delete_before_the_worker_started_cancels_synchronously(app: Flask, platform: Osb, catalog_ids: dict[str, str],
                                                                worker: Worker, partner: ExamplePartner) -> None:
    path = "/service_instances/i-cancel"
    assert platform.call("PUT", path, provision_body(catalog_ids), accepts_incomplete="true").status_code == 202
    cancelled = platform.call("DELETE", path, **delete_query(catalog_ids))
    assert cancelled.status_code == 200 and cancelled.get_json() == {}
    worker.drain()
    with app.extensions["berth.database"].session(write=False) as session:
        addon_id = session.get(OsbInstance, "i-cancel").addon_id  # type: ignore[union-attr]
    assert addon_id not in partner.state()["resources"]  # the partner was never called
    assert platform.call("GET", path + "/last_operation").get_json()["state"] == "succeeded"


def test_concurrent_identical_provisions_make_one_instance(app: Flask, platform: Osb, catalog_ids: dict[str, str]) -> None:
    """The platform's id is the primary key, inserted in the fingerprint-checking transaction: racing
    duplicates get the first one's operation, and one add-on exists."""
    answers: list[Any] = []

    def put() -> None:
        answers.append(platform.call("PUT", "/service_instances/i-race", provision_body(catalog_ids),
                                     accepts_incomplete="true"))

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answer.status_code for answer in answers] == [202] * 6, [a.get_json() for a in answers]
    assert len({answer.get_json()["operation"] for answer in answers}) == 1
    assert count(app, OsbInstance) == 1 and count(app, AddOn) == 1


def test_concurrent_identical_binds_make_one_binding(app: Flask, platform: Osb, catalog_ids: dict[str, str],
                                                     worker: Worker) -> None:
    """Racing PUTs of one binding: one makes it (201), the others answer it as a replay (200), and
    one binding exists. They all wait on the instance's lock, held here meanwhile; on PostgreSQL
    the losers' snapshot is then older than the winner's commit: they meet its binding at the INSERT."""
    instance = provisioned(platform, catalog_ids, worker)
    path = f"/service_instances/{instance}/service_bindings/b-race"
    body = {"service_id": catalog_ids["service"], "plan_id": catalog_ids["test"]}
    answers: list[Any] = []

    def put() -> None:
        answers.append(platform.call("PUT", path, body))

    database = app.extensions["berth.database"]
    threads = [threading.Thread(target=put) for _ in range(6)]
    with database.session() as holder:
        holder.execute(text("SELECT id FROM osb_instances WHERE id = :id" + ("" if database.is_sqlite else " FOR UPDATE")),
                       {"id": instance})
        for thread in threads:
            thread.start()
        time.sleep(1)  # long enough for every request to wait on the lock
        holder.commit()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [200] * 5 + [201], [a.get_json() for a in answers]
    assert len({json.dumps(answer.get_json(), sort_keys=True) for answer in answers}) == 1
    assert count(app, OsbBinding) == 1


@contextlib.contextmanager
def worker_running(worker: Worker) -> Iterator[None]:
    """The worker in a thread beside the requests, as the worker process runs beside gunicorn."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            if not worker.drain():
                time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_synchronous_plan_works_without_accepts_incomplete(app: Flask, platform: Osb, catalog_ids: dict[str, str],
                                                             worker: Worker, partner: ExamplePartner) -> None:
    ids, path = catalog_ids, "/service_instances/i-sync-plan"
    body = provision_body(ids, plan="premium")
    with worker_running(worker):
        made = platform.call("PUT", path, body)
        assert made.status_code == 201 and "operation" not in made.get_json(), made.get_json()
        assert partner_record(app, partner, "i-sync-plan")["state"] == "provisioned"  # usable before 201
        assert platform.call("PUT", path, body).status_code == 200
        assert platform.call("PATCH", path, {"service_id": ids["service"]}).status_code == 200  # no-op, sync plan
        to_async = platform.call("PATCH", path, {"service_id": ids["service"], "plan_id": ids["test"]})
        assert to_async.status_code == 422 and to_async.get_json()["error"] == "AsyncRequired"
        gone = platform.call("DELETE", path, **delete_query(ids, "premium"))
        assert gone.status_code == 200 and gone.get_json() == {}
        assert partner_record(app, partner, "i-sync-plan")["state"] == "deprovisioned"
        partner.set_mode("refusing")
        refused = platform.call("PUT", "/service_instances/i-sync-refused", body)
        assert refused.status_code == 500 and refused.get_json()["description"]  # the platform then deletes it
        partner.set_mode("sync")
        assert platform.call("DELETE", "/service_instances/i-sync-refused", **delete_query(ids, "premium")).status_code == 200


@protocol_only
def test_a_synchronous_provision_the_worker_misses_is_cancelled(app: Flask, platform: Osb,
                                                                catalog_ids: dict[str, str]) -> None:
    app.config["BERTH_SETTINGS"] = app.config["BERTH_SETTINGS"].with_overrides(osb_sync_wait_seconds=0.2)
    path = "/service_instances/i-late"
    late = platform.call("PUT", path, provision_body(catalog_ids, plan="premium"))
    assert late.status_code == 500 and "accepts_incomplete=true" in late.get_json()["description"]
    with app.extensions["berth.database"].session(write=False) as session:
        assert session.scalar(select(AddOn.state)) == "deprovisioned"  # nothing left running
    # The platform's orphan mitigation: gone already.
    assert platform.call("DELETE", path, **delete_query(catalog_ids, "premium")).status_code == 410


def test_a_provision_costs_eight_statements_and_a_poll_three(app: Flask, platform: Osb, catalog_ids: dict[str, str],
                                                             worker: Worker) -> None:
    """A provision and its polls are on a platform's hot path (bench/osb.py), as a bind is. Into the
    context's app (made by the first provision): the platform admitted; the client; the instance id
    (locked on PostgreSQL) to find a replay; the plan with its service; the context's app; the add-on,
    its operation and the instance inserted (no savepoint: a racing twin is answered after a rollback).
    A poll: admitted, the client, the instance with its add-on."""
    ids = catalog_ids
    provisioned(platform, ids, worker)
    instance = str(uuid.uuid4())
    with statements_run(app) as statements:
        made = platform.call("PUT", f"/service_instances/{instance}", provision_body(ids), accepts_incomplete="true")
        provision = list(statements)
        statements.clear()
        pending = platform.call("GET", f"/service_instances/{instance}/last_operation")
        polled = list(statements)
        worker.drain()
        statements.clear()
        done = platform.call("GET", f"/service_instances/{instance}/last_operation")
        polled_done = list(statements)
    assert made.status_code == 202 and made.get_json()["dashboard_url"].endswith(
        "/addons/" + addon_name_of(app, instance))
    assert pending.get_json()["state"] == "in progress" and done.get_json()["state"] == "succeeded"
    assert len(provision) == 8, "\n".join(provision)
    assert len(polled) == 3 and len(polled_done) == 3, "\n".join(polled + polled_done)


def addon_name_of(app: Flask, instance: str) -> str:
    with app.extensions["berth.database"].session(write=False) as session:
        found = session.get(OsbInstance, instance)
        assert found is not None
        return found.addon.name
