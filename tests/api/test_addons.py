"""Provisioning through the Platform API against a real third-party partner process."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from berth.broker import catalogue
from berth.broker.models import AddOn, Attachment, Operation
from berth.broker.partner_api.client import ProviderClient
from berth.jobs.worker import Worker
from berth.worker import make_worker
from berth.db import utcnow
from berth.errors import InvalidParams
from berth.outbound import TargetPolicy
from tests.conftest import Api, User
from tests.partners.harness import ExamplePartner
from tests.partners.resetting import run_resetting_partner


@pytest.fixture(autouse=True)
def sync_mode(partner: ExamplePartner) -> None:
    partner.set_mode("sync")


@pytest.fixture
def service(app: Flask, partner: ExamplePartner) -> str:
    with app.extensions["berth.database"].transaction() as session:
        catalogue.register_manifest(session, partner.manifest(requires=("attachable",)), owner=None)
    return partner.service


@pytest.fixture
def worker(app: Flask) -> Worker:
    return make_worker(app.extensions["berth.database"], app.config["BERTH_SETTINGS"])


@pytest.fixture
def shop(api: Api, alice: User) -> str:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    return "shop"


def provision(api: Api, user: User, app: str, worker: Worker, **body: Any) -> dict[str, Any]:
    response = api.post(f"/apps/{app}/addons", user, json={"plan": "example-partner", **body})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["state"] == "provisioning"
    worker.drain()
    return api.get(f"/addons/{response.get_json()['id']}", user).get_json()


def config(api: Api, user: User, app: str) -> dict[str, str]:
    return api.get(f"/apps/{app}/config-vars", user).get_json()


def newest_release(api: Api, user: User, app: str) -> dict[str, Any]:
    return api.get(f"/apps/{app}/releases", user, headers={"Range": "version ..; order=desc,max=1"}).get_json()[0]


def test_sync_provision_injects_config_as_a_release(api: Api, alice: User, shop: str, service: str,
                                                     worker: Worker, partner: ExamplePartner) -> None:
    addon = provision(api, alice, shop, worker)
    assert addon["state"] == "provisioned" and addon["plan"]["name"] == "example-partner:test"
    assert addon["config_vars"] == ["EXAMPLE_URL"] and addon["billed_price"]["cents"] == 0
    assert addon["app"]["name"] == shop and addon["provider_id"]
    assert config(api, alice, shop) == {"EXAMPLE_URL": f"https://example-partner.invalid/r/{addon['id']}"}
    release = newest_release(api, alice, shop)
    assert release["description"] == f"Attach EXAMPLE (@ref:{addon['name']})"
    assert partner.state()["resources"][addon["id"]]["state"] == "provisioned"
    listed = api.get(f"/apps/{shop}/addons", alice).get_json()
    assert [a["id"] for a in listed] == [addon["id"]]
    attachment = api.get(f"/apps/{shop}/addon-attachments/EXAMPLE", alice).get_json()
    assert attachment["addon"]["id"] == addon["id"] and attachment["config_vars"] == ["EXAMPLE_URL"]


def test_plan_forms_and_attachment_name(api: Api, alice: User, shop: str, service: str, worker: Worker) -> None:
    addon = provision(api, alice, shop, worker, plan={"name": "example-partner:premium"},
                      attachment={"name": "CACHE"}, name="my-cache", config={"size": 2, "tls": True})
    assert addon["name"] == "my-cache" and addon["plan"]["name"] == "example-partner:premium"
    assert set(config(api, alice, shop)) == {"CACHE_URL"}
    assert api.get(f"/apps/{shop}/addons/CACHE", alice).get_json()["id"] == addon["id"]
    assert api.get(f"/apps/{shop}/addons/my-cache", alice).get_json()["id"] == addon["id"]


def test_every_way_to_name_a_plan_finds_it(app: Flask, api: Api, alice: User, shop: str,
                                           partner: ExamplePartner) -> None:
    """A plan's uuid, `<service uuid>:slug`, `service:slug`, or a bare service name (its default
    plan); a Heroku alias finds the service it names, unless a service has that name itself."""
    def register(name: str) -> None:
        with app.extensions["berth.database"].transaction() as session:
            catalogue.register_manifest(session, partner.manifest(name, requires=("many_per_app",)), owner=None)

    # A service named like an alias exists only if registered before the service it aliases.
    for name in ("example-partner", "postgresql", "heroku-redis", "redis"):
        register(name)
    plans = {p["name"]: p["id"] for p in api.get("/addon-services/example-partner/plans", alice).get_json()}
    service_id = api.get("/addon-services/example-partner", alice).get_json()["id"]
    cases = [(plans["example-partner:premium"], "example-partner:premium"),
             (plans["example-partner:test"].upper(), "example-partner:test"),
             (f"{service_id}:premium", "example-partner:premium"),
             ("example-partner:premium", "example-partner:premium"),
             ("example-partner", "example-partner:test"),
             ("heroku-postgresql", "postgresql:test"), ("heroku-postgresql:premium", "postgresql:premium"),
             ("heroku-redis", "heroku-redis:test"), ("redis", "redis:test")]

    def plan_of(ref: str) -> str:
        created = api.post(f"/apps/{shop}/addons", alice, json={"plan": ref})
        assert created.status_code == 201, (ref, created.get_json())
        answer = created.get_json()
        assert answer["state"] == "provisioning" and answer["app"]["name"] == shop, answer
        assert answer["addon_service"]["name"] == answer["plan"]["name"].split(":")[0], answer
        return str(answer["plan"]["name"])

    for ref, expected in cases:
        assert plan_of(ref) == expected, ref
    for missing in ("redis:gold", "nothing", str(uuid.uuid4()), f"{uuid.uuid4()}:test", f"{service_id}:gold"):
        refused = api.post(f"/apps/{shop}/addons", alice, json={"plan": missing})
        assert refused.status_code == 404, (missing, refused.get_json())
        assert refused.get_json()["message"] == (
            f"Couldn't find either the add-on service or the add-on plan {missing!r}."), missing


@pytest.mark.parametrize("contested", ["addon name", "attachment name"])
def test_a_name_taken_while_the_request_ran_is_refused_not_failed(
        app: Flask, api: Api, alice: User, shop: str, service: str, worker: Worker, contested: str) -> None:
    """Another request takes the name after this one checked it (PostgreSQL runs them side by
    side; SQLite makes this one wait for the other's commit): the usual 422, never a 500 from a
    unique constraint, and nothing of the refused request stays."""
    assert api.post("/apps", alice, json={"name": "depot"}).status_code == 201
    depot = api.get("/apps/depot", alice).get_json()["id"]
    plans = {p["name"]: p for p in api.get(f"/addon-services/{service}/plans", alice).get_json()}
    plan = plans[f"{service}:test"]
    shop_id = api.get(f"/apps/{shop}", alice).get_json()["id"]
    # Every request spends a rate-limit token (a write): none may run while `other` holds SQLite.
    other = app.extensions["berth.database"].session()
    held = AddOn(name="contested", service_id=plan["addon_service"]["id"], plan_id=plan["id"], app_id=depot,
                 state="provisioning", region="berth::us")
    other.add(held)
    other.flush()
    if contested == "attachment name":
        other.add(Attachment(addon_id=held.id, app_id=shop_id, name="CACHE"))
    other.flush()  # uncommitted: the request's checks cannot see it yet
    committer = threading.Timer(1.0, other.commit)
    committer.start()
    try:
        body = ({"name": "contested"} if contested == "addon name" else {"attachment": {"name": "CACHE"}})
        refused = api.post(f"/apps/{shop}/addons", alice, json={"plan": service, **body})
    finally:
        committer.join()
        other.close()
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["message"] == ("The add-on name contested is already taken."
                                             if contested == "addon name"
                                             else "CACHE is already an attachment name on shop.")
    assert [a["name"] for a in api.get("/addons", alice).get_json()] == ["contested"]
    assert worker.drain() == 0  # no operation of the refused request


def test_attachment_vars_belong_to_the_attachment(api: Api, alice: User, shop: str, service: str,
                                                  worker: Worker) -> None:
    provision(api, alice, shop, worker)
    for change in ({"EXAMPLE_URL": "hijacked"}, {"EXAMPLE_URL": None}):
        response = api.patch(f"/apps/{shop}/config-vars", alice, json=change)
        assert response.status_code == 409 and "add-on" in response.get_json()["message"]
    assert config(api, alice, shop)["EXAMPLE_URL"].startswith("https://example-partner.invalid/")


def test_overwriting_a_user_var_needs_confirmation(api: Api, alice: User, shop: str, service: str,
                                                  worker: Worker) -> None:
    api.patch(f"/apps/{shop}/config-vars", alice, json={"EXAMPLE_URL": "mine"})
    refused = api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner"})
    assert refused.status_code == 422 and refused.get_json()["id"] == "confirmation_required"
    assert api.get(f"/apps/{shop}/addons", alice).get_json() == []
    assert api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner", "confirm": "wrong"}
                    ).status_code == 422
    addon = provision(api, alice, shop, worker, confirm=shop)
    assert config(api, alice, shop)["EXAMPLE_URL"].endswith(addon["id"])


def test_refused_provision_fails_cleanly(api: Api, alice: User, shop: str, service: str,
                                         worker: Worker, partner: ExamplePartner) -> None:
    partner.set_mode("refusing")
    before = partner.calls("deprovision")
    addon = provision(api, alice, shop, worker)
    assert addon["state"] == "deprovisioned"  # how the Heroku CLI learns that creation failed
    assert addon["failure_message"] == "That plan is not available in your region."
    assert config(api, alice, shop) == {} and api.get(f"/apps/{shop}/addons", alice).get_json() == []
    assert api.get(f"/apps/{shop}/addon-attachments", alice).get_json() == []
    assert [r["version"] for r in api.get(f"/apps/{shop}/releases", alice).get_json()] == [1]
    assert partner.calls("deprovision") == before  # it said no: nothing to clean up


@pytest.mark.parametrize("mode", ["failing", "malformed-json", "malformed-no-id"])
def test_failed_provision_is_cleaned_up_at_the_partner(api: Api, alice: User, shop: str, service: str,
                                                      worker: Worker, partner: ExamplePartner,
                                                      mode: str) -> None:
    partner.set_mode(mode)
    before = partner.calls("deprovision")
    response = api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner"})
    addon_id = response.get_json()["id"]
    assert worker.run_one()  # the provision call, answered badly
    addon = api.get(f"/addons/{addon_id}", alice).get_json()
    assert addon["state"] == "deprovisioned" and "provider" in addon["failure_message"]
    assert config(api, alice, shop) == {}
    partner.set_mode("sync")
    worker.drain()  # the orphan-mitigating DELETE, queued with the failure
    assert partner.calls("deprovision") == before + 1
    held = partner.state()["resources"].get(addon_id)
    assert held is None or held["state"] == "deprovisioned"
    assert api.get(f"/addons/{addon_id}", alice).get_json()["state"] == "deprovisioned"


def test_a_provision_without_an_answer_is_asked_again_later(app: Flask, api: Api, alice: User, shop: str,
                                                           tmp_path: Path) -> None:
    """A provider whose connections reset (its web server restarting) past the client's quick
    retries: the provision is queued again rather than failed, and succeeds once it answers."""
    with run_resetting_partner(tmp_path) as restarting:
        with app.extensions["berth.database"].transaction() as session:
            catalogue.register_manifest(session, restarting.manifest(), owner=None)
        settings = app.config["BERTH_SETTINGS"]
        client = ProviderClient(targets=TargetPolicy.from_settings(settings), retry_delays=(0.01,))
        worker = make_worker(app.extensions["berth.database"], settings, client)
        restarting.reset_next(4)  # two attempts of the client, twice
        created = api.post(f"/apps/{shop}/addons", alice, json={"plan": "resetting"}).get_json()
        for _ in range(2):
            assert worker.run_one()
            assert api.get(f"/addons/{created['id']}", alice).get_json()["state"] == "provisioning"
        assert worker.run_one()
        assert api.get(f"/addons/{created['id']}", alice).get_json()["state"] == "provisioned"
        assert restarting.calls("provision") == 5
        restarting.reset_next(100)  # never answers: after three unanswered rounds, it fails
        assert api.post("/apps", alice, json={"name": "shop-2"}).status_code == 201
        doomed = api.post("/apps/shop-2/addons", alice, json={"plan": "resetting"}).get_json()
        for _ in range(3):
            assert worker.run_one()
        shown = api.get(f"/addons/{doomed['id']}", alice).get_json()
        assert shown["state"] == "deprovisioned" and "could not be reached" in shown["failure_message"]
        restarting.reset_next(0)


def test_deprovision_keeps_retrying_while_the_partner_fails(api: Api, alice: User, shop: str, service: str,
                                                            worker: Worker, partner: ExamplePartner) -> None:
    addon = provision(api, alice, shop, worker)
    partner.set_mode("failing")
    api.delete(f"/apps/{shop}/addons/{addon['id']}", alice)
    assert worker.drain(limit=5) == 5  # still due after every failure (retries are immediate here)
    shown = api.get(f"/addons/{addon['id']}", alice).get_json()
    assert shown["state"] == "deprovisioning"  # visible while it lasts
    partner.set_mode("sync")
    worker.drain()
    assert api.get(f"/addons/{addon['id']}", alice).status_code == 404


def test_destroy_detaches_at_once_and_deprovisions(api: Api, alice: User, shop: str, service: str,
                                                   worker: Worker, partner: ExamplePartner) -> None:
    addon = provision(api, alice, shop, worker)
    response = api.delete(f"/apps/{shop}/addons/{addon['name']}", alice, json={"force": False})
    assert response.status_code == 200 and response.get_json()["state"] == "deprovisioning"
    assert config(api, alice, shop) == {}
    assert newest_release(api, alice, shop)["description"] == f"Detach EXAMPLE (@ref:{addon['name']})"
    worker.drain()
    assert api.get(f"/addons/{addon['id']}", alice).status_code == 404
    assert partner.state()["resources"][addon["id"]]["state"] == "deprovisioned"


def test_deprovision_failures_are_retried_until_they_succeed(api: Api, alice: User, shop: str, service: str,
                                                             worker: Worker, partner: ExamplePartner) -> None:
    addon = provision(api, alice, shop, worker)
    partner.set_mode("flaky", flaky_failures=2)
    api.delete(f"/apps/{shop}/addons/{addon['id']}", alice)
    worker.drain()
    assert partner.state()["resources"][addon["id"]]["state"] == "deprovisioned"
    with api.app.extensions["berth.database"].transaction() as session:
        operation = session.scalar(select(Operation).where(Operation.addon_id == addon["id"],
                                                           Operation.kind == "deprovision"))
        assert operation is not None and operation.state == "done" and operation.attempts == 3


def test_plan_change_applies_after_the_partner_agrees(api: Api, alice: User, shop: str, service: str,
                                                     worker: Worker, partner: ExamplePartner) -> None:
    addon = provision(api, alice, shop, worker)
    response = api.patch(f"/apps/{shop}/addons/{addon['name']}", alice, json={"plan": {"name": "example-partner:premium"}})
    assert response.status_code == 200 and response.get_json()["plan"]["name"] == "example-partner:test"
    worker.drain()
    assert api.get(f"/addons/{addon['id']}", alice).get_json()["plan"]["name"] == "example-partner:premium"
    assert partner.state()["resources"][addon["id"]]["plan"] == "premium"
    partner.set_mode("refusing")
    api.patch(f"/apps/{shop}/addons/{addon['name']}", alice, json={"plan": "test"})
    worker.drain()
    assert api.get(f"/addons/{addon['id']}", alice).get_json()["plan"]["name"] == "example-partner:premium"
    bad = api.patch(f"/apps/{shop}/addons/{addon['name']}", alice, json={"plan": "example-partner:gold"})
    assert bad.status_code == 422 and bad.get_json()["message"].startswith("Couldn't find either the add-on")


def test_a_plan_change_refused_after_the_request_shows_on_the_addon(api: Api, alice: User, shop: str,
                                                                    service: str, worker: Worker,
                                                                    partner: ExamplePartner) -> None:
    """No worker answered within the request's wait (none runs here): the refusal comes later and
    stays on the add-on, with the plan it keeps, until the next plan change."""
    addon = provision(api, alice, shop, worker)
    partner.set_mode("refusing")
    queued = api.patch(f"/apps/{shop}/addons/{addon['name']}", alice, json={"plan": "premium"})
    assert queued.status_code == 200 and queued.get_json()["failure_message"] is None
    worker.drain()
    shown = api.get(f"/addons/{addon['id']}", alice).get_json()
    assert (shown["state"], shown["plan"]["name"]) == ("provisioned", "example-partner:test")
    assert shown["failure_message"] == (f"Changing {addon['name']} to example-partner:premium failed; it stays "
                                        "on example-partner:test. That plan is not available in your region.")
    partner.set_mode("sync")
    api.patch(f"/apps/{shop}/addons/{addon['name']}", alice, json={"plan": "premium"})
    worker.drain()
    shown = api.get(f"/addons/{addon['id']}", alice).get_json()
    assert (shown["plan"]["name"], shown["failure_message"]) == ("example-partner:premium", None)


def test_sharing_attaches_vars_to_another_app(api: Api, alice: User, shop: str, service: str,
                                              worker: Worker) -> None:
    addon = provision(api, alice, shop, worker)
    api.post("/apps", alice, json={"name": "reports"})
    response = api.post("/addon-attachments", alice, json={"addon": {"name": addon["name"]},
                                                          "app": {"name": "reports"}, "name": "SHARED"})
    assert response.status_code == 201
    assert config(api, alice, "reports") == {"SHARED_URL": config(api, alice, shop)["EXAMPLE_URL"]}
    attachment_id = response.get_json()["id"]
    assert api.delete(f"/addon-attachments/{attachment_id}", alice).status_code == 200
    assert config(api, alice, "reports") == {}
    own = api.get(f"/apps/{shop}/addon-attachments/EXAMPLE", alice).get_json()["id"]
    assert api.delete(f"/addon-attachments/{own}", alice).status_code == 409


def test_destroying_the_app_deprovisions_its_addons(api: Api, alice: User, shop: str, service: str,
                                                    worker: Worker, partner: ExamplePartner) -> None:
    addon = provision(api, alice, shop, worker)
    assert api.delete(f"/apps/{shop}", alice).status_code == 200
    worker.drain()
    assert partner.state()["resources"][addon["id"]]["state"] == "deprovisioned"
    assert api.get(f"/addons/{addon['id']}", alice).status_code == 404


def test_an_abandoned_call_is_run_again_without_a_second_resource(
        api: Api, alice: User, shop: str, service: str, worker: Worker, partner: ExamplePartner) -> None:
    """A worker died after claiming (and maybe after calling): the lease passes, it runs again."""
    response = api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner"})
    addon_id = response.get_json()["id"]
    database = api.app.extensions["berth.database"]
    with database.transaction() as session:
        session.execute(update(Operation).where(Operation.addon_id == addon_id).values(
            state="running", lease_until=utcnow() - timedelta(seconds=1), attempts=1))
    worker.drain()
    assert api.get(f"/addons/{addon_id}", alice).get_json()["state"] == "provisioned"
    held = [uuid for uuid, r in partner.state()["resources"].items() if uuid == addon_id]
    assert held == [addon_id]


def test_bad_requests_change_nothing(api: Api, alice: User, bob: User, shop: str, service: str,
                                     worker: Worker) -> None:
    cases = [({"plan": "nothing:here"}, 404), ({"plan": "example-partner:gold"}, 404), ({}, 422),
             ({"plan": "example-partner", "name": "9bad"}, 422),
             ({"plan": "example-partner", "attachment": {"name": "lower"}}, 422),
             ({"plan": "example-partner", "config": {"nested": {"a": 1}}}, 422),
             ({"plan": "example-partner", "attachment": {"name": 5}}, 422),
             ({"plan": "example-partner", "attachment": "CACHE"}, 422),
             ({"plan": "example-partner", "colour": "red"}, 422)]
    for body, status in cases:
        response = api.post(f"/apps/{shop}/addons", alice, json=body)
        assert response.status_code == status, (body, response.get_json())
    assert api.post(f"/apps/{shop}/addons", bob, json={"plan": "example-partner"}).status_code == 404
    assert api.get("/addons", alice).get_json() == [] and worker.drain() == 0
    provision(api, alice, shop, worker)
    again = api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner"})
    assert again.status_code == 422 and "one per app" in again.get_json()["message"]


def test_other_users_cannot_see_or_touch_addons(api: Api, alice: User, bob: User, shop: str, service: str,
                                                worker: Worker) -> None:
    addon = provision(api, alice, shop, worker)
    for path in (f"/addons/{addon['id']}", f"/addons/{addon['name']}", f"/apps/{shop}/addons"):
        assert api.get(path, bob).status_code == 404, path
    assert api.get("/addons", bob).get_json() == []
    assert api.delete(f"/apps/{shop}/addons/{addon['id']}", bob).status_code == 404
    assert api.post("/actions/addons/resolve", bob, json={"addon": addon["name"]}).status_code == 404
    resolved = api.post("/actions/addons/resolve", alice, json={"addon": "EXAMPLE", "app": shop}).get_json()
    assert [a["id"] for a in resolved] == [addon["id"]]


def test_sso_form_signs_the_user_into_the_partner_dashboard(api: Api, alice: User, bob: User, shop: str,
                                                            service: str, worker: Worker,
                                                            partner: ExamplePartner) -> None:
    import requests

    addon = provision(api, alice, shop, worker)
    form = api.get(f"/apps/{shop}/addons/EXAMPLE/sso", alice).get_json()
    assert form["method"] == "post" and form["action"] == partner.sso_url
    params = form["params"]
    assert params["resource_id"] == addon["id"] and params["email"] == alice.email
    assert params["app"] == params["context_app"] == shop
    # The partner (its own, independent token check) lets this browser in, and no other.
    accepted = requests.post(form["action"], data=params, allow_redirects=False, timeout=10)
    assert accepted.status_code == 302
    forged = requests.post(form["action"], data={**params, "resource_token": "0" * 40,
                                                 "user_scoped_resource_token": "0" * 64},
                           allow_redirects=False, timeout=10)
    assert forged.status_code == 403
    assert api.get(f"/addons/{addon['name']}/sso", alice).get_json()["params"]["resource_id"] == addon["id"]
    assert api.get(f"/apps/{shop}/addons/EXAMPLE/sso", bob).status_code == 404


def test_async_provision_past_its_deadline_fails_and_is_cleaned_up(
        api: Api, alice: User, shop: str, service: str, worker: Worker, partner: ExamplePartner) -> None:
    from berth.broker.models import AddOn

    partner.set_mode("async")
    addon_id = api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner"}).get_json()["id"]
    worker.drain()
    assert api.get(f"/addons/{addon_id}", alice).get_json()["state"] == "provisioning"
    database = api.app.extensions["berth.database"]
    with database.transaction() as session:
        session.execute(update(AddOn).where(AddOn.id == addon_id).values(deadline_at=utcnow() - timedelta(seconds=1)))
    partner.set_mode("sync")
    worker.sweep()
    shown = api.get(f"/addons/{addon_id}", alice).get_json()
    assert shown["state"] == "deprovisioned" and "in time" in shown["failure_message"]
    before = partner.calls("deprovision")
    worker.drain()
    assert partner.calls("deprovision") == before + 1
    assert api.get(f"/apps/{shop}/addons", alice).get_json() == []


def test_a_plan_with_add_ons_cannot_be_dropped_but_can_be_deprecated(
        api: Api, app: Flask, alice: User, shop: str, service: str, worker: Worker,
        partner: ExamplePartner) -> None:
    addon = provision(api, alice, shop, worker, plan={"name": "example-partner:premium"})
    database = app.extensions["berth.database"]
    without_premium = partner.manifest(requires=("attachable",))
    without_premium["plans"] = [plan for plan in without_premium["plans"] if plan["name"] != "premium"]
    with database.transaction() as session:
        with pytest.raises(InvalidParams) as refused:
            catalogue.register_manifest(session, without_premium, owner=None)
    assert "'premium' has add-ons and cannot be removed" in str(refused.value)
    assert api.get(f"/addons/{addon['id']}", alice).get_json()["plan"]["name"] == "example-partner:premium"

    deprecated = partner.manifest(requires=("attachable",))
    for plan in deprecated["plans"]:
        if plan["name"] == "premium":
            plan["state"] = "deprecated"
    with database.transaction() as session:
        catalogue.register_manifest(session, deprecated, owner=None)
    fresh = api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner:premium"})
    assert fresh.status_code == 422 and "deprecated" in fresh.get_json()["message"]
    assert api.get(f"/addons/{addon['id']}", alice).status_code == 200  # its add-on keeps going
    back = api.patch(f"/apps/{shop}/addons/{addon['id']}", alice, json={"plan": "example-partner:test"})
    assert back.status_code == 200
    worker.drain()
    again = api.patch(f"/apps/{shop}/addons/{addon['id']}", alice, json={"plan": "example-partner:premium"})
    assert again.status_code == 422 and "deprecated" in again.get_json()["message"]
