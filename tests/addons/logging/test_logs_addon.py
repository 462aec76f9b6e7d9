"""The log store add-on through its HTTP surface: provisioned through its partner API, fed
through its drain, searched through LOGS_URL and its SSO dashboard; tenants isolated, volume and
retention enforced, everything gone on deprovision."""
from __future__ import annotations

import base64
import uuid as uuids
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from berth import create_app
from berth.addons.logging.plans import LogPlan
from berth.addons.logging.provider import LogsProvider
from berth.addons.secrets import provider_password
from berth.broker.partner_api.sso import sso_params
from berth.config import Settings
from berth.logplex import format_frame
from tests.conftest import empty_all_tables


@pytest.fixture
def logs_app(settings: Settings) -> Iterator[Flask]:
    flask_app = create_app(settings.with_overrides(builtin_addons=True))
    yield flask_app
    empty_all_tables(flask_app)
    flask_app.extensions["berth.database"].dispose()


@pytest.fixture
def client(logs_app: Flask) -> FlaskClient:
    return logs_app.test_client()


@pytest.fixture
def provider(logs_app: Flask) -> LogsProvider:
    return logs_app.extensions["berth.providers"]["logs"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def provision(client: FlaskClient, settings: Settings, plan: str = "free") -> dict[str, Any]:
    resource = str(uuids.uuid4())
    answer = client.post("/providers/logs/heroku/resources", headers=basic("logs", provider_password(settings, "logs")),
                         json={"uuid": resource, "plan": plan, "region": "local", "options": {},
                               "log_drain_token": f"d.{resource}"})
    assert answer.status_code == 200, answer.get_json()
    return {"uuid": resource, **answer.get_json()}


def send(client: FlaskClient, drain_url: str, *lines: tuple[str, str, str], when: datetime | None = None,
         token: str = "d.x", content_type: str = "application/logplex-1") -> Any:
    parts = urlsplit(drain_url)
    body = b"".join(format_frame(when or datetime.now(timezone.utc), source, process, message)
                    for source, process, message in lines)
    return client.post(parts.path, data=body, headers={**basic(parts.username or "", parts.password or ""),
                                                        "Content-Type": content_type, "Logplex-Drain-Token": token})


def search(client: FlaskClient, logs_url: str, **query: str) -> Any:
    parts = urlsplit(logs_url)
    return client.get(parts.path + "/lines", query_string=query,
                      headers=basic(parts.username or "", parts.password or ""))


def messages(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.get_json()
    return [line["message"] for line in answer.get_json()["lines"]]


def test_provision_gives_a_drain_url_and_a_search_url(client: FlaskClient, settings: Settings) -> None:
    made = provision(client, settings)
    drain, logs_url = urlsplit(made["log_drain_url"]), urlsplit(made["config"]["LOGS_URL"])
    assert drain.username == "drain" and drain.password and drain.path == f"/providers/logs/drains/{made['uuid']}"
    assert logs_url.username == "token" and logs_url.password != drain.password
    again = provision_again(client, settings, made["uuid"])
    assert again["config"] == made["config"] and again["log_drain_url"] == made["log_drain_url"]


def provision_again(client: FlaskClient, settings: Settings, resource: str) -> dict[str, Any]:
    answer = client.post("/providers/logs/heroku/resources", headers=basic("logs", provider_password(settings, "logs")),
                         json={"uuid": resource, "plan": "free", "log_drain_token": f"d.{resource}"})
    assert answer.status_code == 200
    return answer.get_json()


def test_lines_arrive_through_the_drain_and_are_searched(client: FlaskClient, settings: Settings) -> None:
    made = provision(client, settings)
    answer = send(client, made["log_drain_url"], ("app", "web.1", "GET /orders 200"),
                  ("app", "worker.2", "charged order 17"), ("heroku", "router", "at=info path=/orders"))
    assert answer.status_code == 204
    logs_url = made["config"]["LOGS_URL"]
    assert messages(search(client, logs_url)) == ["GET /orders 200", "charged order 17", "at=info path=/orders"]
    assert messages(search(client, logs_url, q="ORDER")) == ["GET /orders 200", "charged order 17",
                                                              "at=info path=/orders"]
    assert messages(search(client, logs_url, q="100%_")) == []  # LIKE wildcards are literal
    assert messages(search(client, logs_url, source="heroku")) == ["at=info path=/orders"]
    assert messages(search(client, logs_url, dyno="worker")) == ["charged order 17"]
    assert messages(search(client, logs_url, dyno="web.1")) == ["GET /orders 200"]
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert messages(search(client, logs_url, since=future)) == []
    assert search(client, logs_url, since="yesterday").status_code == 400
    assert search(client, logs_url, limit="0").status_code == 400


@pytest.mark.parametrize("change", ["secret", "user", "none", "type", "body"])
def test_bad_deliveries_are_refused_and_keep_nothing(client: FlaskClient, settings: Settings, change: str) -> None:
    made = provision(client, settings)
    drain = urlsplit(made["log_drain_url"])
    path = drain.path
    if change == "body":
        answer = client.post(path, data=b"12 not a frame", headers={**basic("drain", drain.password or ""),
                                                                    "Content-Type": "application/logplex-1"})
        expected = 400
    elif change == "type":
        answer = send(client, made["log_drain_url"], ("app", "web.1", "x"), content_type="text/plain")
        expected = 415
    else:
        headers = {"Content-Type": "application/logplex-1"}
        if change == "secret":
            headers.update(basic("drain", "wrong"))
        elif change == "user":
            headers.update(basic("token", drain.password or ""))
        body = format_frame(datetime.now(timezone.utc), "app", "web.1", "x")
        answer = client.post(path, data=body, headers=headers)
        expected = 401
    assert answer.status_code == expected and "message" in answer.get_json()
    assert messages(search(client, made["config"]["LOGS_URL"])) == []


def test_tenants_cannot_read_or_write_each_others_logs(client: FlaskClient, settings: Settings) -> None:
    first, second = provision(client, settings), provision(client, settings)
    send(client, first["log_drain_url"], ("app", "web.1", "first's secret"))
    a_url, b_url = urlsplit(first["config"]["LOGS_URL"]), urlsplit(second["config"]["LOGS_URL"])
    crossed = client.get(b_url.path + "/lines", headers=basic("token", a_url.password or ""))
    assert crossed.status_code == 401
    b_drain = urlsplit(second["log_drain_url"])
    forged = client.post(b_drain.path, data=format_frame(datetime.now(timezone.utc), "app", "web.1", "x"),
                         headers={**basic("drain", urlsplit(first["log_drain_url"]).password or ""),
                                  "Content-Type": "application/logplex-1"})
    assert forged.status_code == 401
    assert messages(search(client, second["config"]["LOGS_URL"])) == []


def test_volume_over_the_month_is_dropped(client: FlaskClient, settings: Settings, provider: LogsProvider) -> None:
    provider.plans = {"free": LogPlan("free", "Free", 0, retention_days=2, monthly_bytes=300, default=True)}
    made = provision(client, settings)
    assert send(client, made["log_drain_url"], ("app", "web.1", "a" * 100)).status_code == 204
    assert send(client, made["log_drain_url"], ("app", "web.1", "b" * 300)).status_code == 204  # over: dropped
    assert messages(search(client, made["config"]["LOGS_URL"])) == ["a" * 100]


def test_retention_hides_then_purges_old_lines(client: FlaskClient, settings: Settings,
                                               provider: LogsProvider) -> None:
    made = provision(client, settings)
    old = datetime.now(timezone.utc) - timedelta(days=3)  # the free plan keeps 2 days
    send(client, made["log_drain_url"], ("app", "web.1", "ancient"), when=old)
    send(client, made["log_drain_url"], ("app", "web.1", "recent"))
    assert messages(search(client, made["config"]["LOGS_URL"])) == ["recent"]
    assert provider.purge() == 1
    assert provider.purge() == 0


def test_sso_opens_the_dashboard_for_that_store_only(client: FlaskClient, settings: Settings,
                                                     provider: LogsProvider) -> None:
    made, other = provision(client, settings), provision(client, settings)
    send(client, made["log_drain_url"], ("app", "web.1", "<script>alert(1)</script> shipped"))
    assert client.get(f"/providers/logs/dashboard/{made['uuid']}").status_code == 403  # not signed in
    params = sso_params(made["uuid"], provider.sso_salt(), user_id=str(uuids.uuid4()), email="dev@example.com",
                        app="shop")
    bad = client.post("/providers/logs/sso", data={**params, "resource_token": "0" * 40})
    assert bad.status_code == 403
    signed_in = client.post("/providers/logs/sso", data=params)
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith(f"/dashboard/{made['uuid']}")
    page = client.get(f"/providers/logs/dashboard/{made['uuid']}", query_string={"q": "shipped"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "&lt;script&gt;alert(1)&lt;/script&gt; shipped" in html
    assert "<script>alert" not in html
    assert client.get(f"/providers/logs/dashboard/{other['uuid']}").status_code == 403


def test_deprovision_removes_the_lines_and_every_credential(client: FlaskClient, settings: Settings) -> None:
    made = provision(client, settings)
    send(client, made["log_drain_url"], ("app", "web.1", "soon gone"))
    auth = basic("logs", provider_password(settings, "logs"))
    assert client.delete(f"/providers/logs/heroku/resources/{made['uuid']}", headers=auth).status_code == 204
    assert search(client, made["config"]["LOGS_URL"]).status_code == 401
    assert send(client, made["log_drain_url"], ("app", "web.1", "late")).status_code == 401
    assert client.delete(f"/providers/logs/heroku/resources/{made['uuid']}", headers=auth).status_code == 410


def test_bad_plans_and_options_are_refused(client: FlaskClient, settings: Settings) -> None:
    auth = basic("logs", provider_password(settings, "logs"))
    for body in ({"plan": "enormous"}, {"plan": "free", "options": {"size": "2"}}, {"plan": "free"}):
        resource = str(uuids.uuid4())
        document = {"uuid": resource, "log_drain_token": f"d.{resource}", **body}
        if body == {"plan": "free"}:
            document.pop("log_drain_token")
        answer = client.post("/providers/logs/heroku/resources", headers=auth, json=document)
        assert answer.status_code == 422 and answer.get_json()["message"]
        assert client.delete(f"/providers/logs/heroku/resources/{resource}", headers=auth).status_code == 410
