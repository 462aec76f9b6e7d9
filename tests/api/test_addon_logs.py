"""Add-ons and the log stream: `log_input` gives the provider a URL to write into each attached
app's stream; `syslog_drain` gives it a drain token and turns its `log_drain_url` into a drain on
every attached app. Both go with the attachment."""
from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from berth.jobs.worker import Worker
from berth.platform.logs import store
from berth.outbound import TargetPolicy
from berth.platform.logs.forwarder import Forwarder
from tests.conftest import Api, User
from tests.api.conftest import register_partner
from tests.partners.harness import ExamplePartner


@pytest.fixture
def worker(app: Flask, partner: ExamplePartner) -> Worker:
    return register_partner(app, partner, ("attachable", "log_input", "syslog_drain"))


@pytest.fixture
def apps(api: Api, alice: User) -> tuple[str, str]:
    for name in ("shop", "admin"):
        assert api.post("/apps", alice, json={"name": name}).status_code == 201
    return "shop", "admin"


def provision(api: Api, alice: User, app: str, worker: Worker) -> dict[str, Any]:
    created = api.post(f"/apps/{app}/addons", alice, json={"plan": "example-partner"})
    assert created.status_code == 201, created.get_json()
    worker.drain()
    return api.get(f"/addons/{created.get_json()['id']}", alice).get_json()


def sent_provision(partner: ExamplePartner, addon_id: str) -> dict[str, Any]:
    return [r["body"] for r in partner.state()["requests"]
            if r["kind"] == "provision" and r["body"]["uuid"] == addon_id][-1]


def post_logs(api: Api, url: str, message: str) -> Any:
    parts = urlsplit(url)
    frame = f"<190>1 2026-11-26T08:00:00+00:00 host {parts.password} worker.1 - - {message}".encode()
    credentials = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    return api.client.post(parts.path, data=str(len(frame)).encode() + b" " + frame,
                           headers={"Authorization": f"Basic {credentials}",
                                    "Content-Type": "application/logplex-1"})


def test_provision_sends_log_input_url_and_drain_token_and_makes_the_drain(
        api: Api, alice: User, apps: tuple[str, str], worker: Worker, partner: ExamplePartner) -> None:
    shop, _ = apps
    addon = provision(api, alice, shop, worker)
    assert addon["state"] == "provisioned"
    body = sent_provision(partner, addon["id"])
    attachment = api.get(f"/apps/{shop}/addon-attachments/EXAMPLE", alice).get_json()
    assert body["log_input_url"] == attachment["log_input_url"]
    url = urlsplit(body["log_input_url"])
    assert url.username == "token" and url.password.startswith("t.") and url.path == "/logs"
    assert body["log_drain_token"].startswith("d.")

    drains = api.get(f"/apps/{shop}/log-drains", alice).get_json()
    assert [(d["url"], d["token"]) for d in drains] == [(f"{partner.base}/drains/{addon['id']}",
                                                         body["log_drain_token"])]
    assert drains[0]["addon"]["id"] == addon["id"]
    refused = api.delete(f"/apps/{shop}/log-drains/{drains[0]['id']}", alice)
    assert refused.status_code == 422 and addon["name"] in refused.get_json()["message"]
    assert len(api.get(f"/apps/{shop}/log-drains", alice).get_json()) == 1


def test_the_provider_writes_into_the_apps_stream(api: Api, alice: User, apps: tuple[str, str],
                                                   worker: Worker, partner: ExamplePartner) -> None:
    shop, _ = apps
    addon = provision(api, alice, shop, worker)
    url = sent_provision(partner, addon["id"])["log_input_url"]
    assert post_logs(api, url, "backup finished").status_code == 204
    session = api.post(f"/apps/{shop}/log-sessions", alice, json={"lines": 10}).get_json()
    lines = api.client.get(urlsplit(session["logplex_url"]).path).get_data(as_text=True)
    assert f"{addon['name']}[worker.1]: backup finished" in lines


def test_each_attached_app_gets_its_own_input_token_and_drain_and_loses_them_on_detach(
        api: Api, alice: User, apps: tuple[str, str], worker: Worker, partner: ExamplePartner) -> None:
    shop, admin = apps
    addon = provision(api, alice, shop, worker)
    attached = api.post("/addon-attachments", alice, json={"addon": addon["id"], "app": admin})
    assert attached.status_code == 201
    there = attached.get_json()
    here = api.get(f"/apps/{shop}/addon-attachments/EXAMPLE", alice).get_json()
    assert there["log_input_url"] and there["log_input_url"] != here["log_input_url"]
    [shop_drain] = api.get(f"/apps/{shop}/log-drains", alice).get_json()
    [admin_drain] = api.get(f"/apps/{admin}/log-drains", alice).get_json()
    assert admin_drain["url"] == shop_drain["url"] and admin_drain["token"] != shop_drain["token"]

    assert api.delete(f"/addon-attachments/{there['id']}", alice).status_code == 200
    assert api.get(f"/apps/{admin}/log-drains", alice).get_json() == []
    assert post_logs(api, there["log_input_url"], "too late").status_code == 401
    assert post_logs(api, here["log_input_url"], "still fine").status_code == 204


def test_destroying_the_addon_removes_its_drains_and_input(api: Api, alice: User, apps: tuple[str, str],
                                                           worker: Worker) -> None:
    shop, _ = apps
    addon = provision(api, alice, shop, worker)
    url = api.get(f"/apps/{shop}/addon-attachments/EXAMPLE", alice).get_json()["log_input_url"]
    assert api.delete(f"/apps/{shop}/addons/{addon['id']}", alice).status_code == 200
    worker.drain()
    assert api.get(f"/apps/{shop}/log-drains", alice).get_json() == []
    assert post_logs(api, url, "gone").status_code == 401


def test_a_provider_that_omits_the_required_drain_url_fails_the_provision(
        api: Api, alice: User, apps: tuple[str, str], worker: Worker, partner: ExamplePartner) -> None:
    shop, _ = apps
    partner.set_mode("canned", status=200, body={"id": "r-1", "config": {"EXAMPLE_URL": "https://x.example/"}})
    created = api.post(f"/apps/{shop}/addons", alice, json={"plan": "example-partner"}).get_json()
    assert worker.run_one()
    addon = api.get(f"/addons/{created['id']}", alice).get_json()
    assert addon["state"] == "deprovisioned" and addon["failure_message"]
    assert api.get(f"/apps/{shop}/log-drains", alice).get_json() == []
    assert api.get(f"/apps/{shop}/addon-attachments", alice).get_json() == []


def test_the_apps_lines_reach_the_addons_drain(api: Api, alice: User, apps: tuple[str, str], worker: Worker,
                                               partner: ExamplePartner, app: Flask) -> None:
    shop, _ = apps
    database = app.extensions["berth.database"]
    with database.transaction() as session:  # logged before the drain exists: not sent
        store.append(session, shop_id(api, alice, shop), [store.Entry("app", "web.1", "before the add-on")])
    addon = provision(api, alice, shop, worker)
    with database.transaction() as session:
        store.append(session, shop_id(api, alice, shop), [store.Entry("app", "web.1", f"request {n}")
                                                           for n in range(3)])
    forwarder = Forwarder(database, TargetPolicy(allow_private=True))
    assert forwarder.deliver_once() == 3
    assert forwarder.deliver_once() == 0  # nothing new
    received = partner.state()["drains"][addon["id"]]
    [body], [headers] = received["bodies"][-1:], received["headers"][-1:]
    assert "before the add-on" not in body
    assert [line.split(" - ", 1)[1] for line in body.splitlines()] == ["request 0", "request 1", "request 2"]
    assert headers["Logplex-Msg-Count"] == "3" and headers["Content-Type"] == "application/logplex-1"
    assert headers["Logplex-Drain-Token"] == sent_provision(partner, addon["id"])["log_drain_token"]


def shop_id(api: Api, alice: User, app: str) -> str:
    return api.get(f"/apps/{app}", alice).get_json()["id"]
