"""Berth's own data add-ons have their page as their dashboard: usage from the real provider, the
credentials masked with a reveal, backups captured through a CSRF-checked form; a provider that is
down or slow gives a message in place of its sections; Open shows only where SSO exists.

The test app is also served on a loopback port (a thread), so the built-in providers it registers
are reached over HTTP exactly as in production; Postgres add-ons go to the session's server."""
from __future__ import annotations

import html
import re
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from berth.addons.kafka import broker as kafka_broker
from berth.addons.postgres.cluster import LocalPostgres
from berth.addons.redis import instances
from berth.jobs.worker import Worker
from berth.worker import make_worker
from berth.config import Settings
from berth.supervise.readiness import wait_until
from berth.web.addon_dashboard import PAGE_READ_SECONDS
from tests.builtin_platform import let_service_accounts_in
from tests.conftest import TEST_KEY, Api, User
from tests.live_server import free_port
from tests.web.conftest import Browser, text
from tests.web.test_addon_pages import addon_name
from tests.web.test_marketplace import make_app

PROVIDER_TIMEOUT = 10.0  # for provisioning; a page gives a provider PAGE_READ_SECONDS at most


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture
def settings(database_url: str, session_dir: Path, postgres_server: LocalPostgres, port: int) -> Settings:
    let_service_accounts_in(session_dir)
    return Settings(data_dir=session_dir, database_url=database_url, secret_keys=(TEST_KEY,), port=port,
                    provision_wait_seconds=0, retry_base_seconds=0, builtin_addons=True,
                    postgres_servers=(postgres_server.admin_url(),), provider_timeout_seconds=PROVIDER_TIMEOUT)


@pytest.fixture
def served(app: Flask, port: int) -> Iterator[BaseWSGIServer]:
    """The providers' side of the app, on the port their manifests name."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def worker(app: Flask, settings: Settings, served: BaseWSGIServer) -> Iterator[Worker]:
    yield make_worker(app.extensions["berth.database"], settings)
    instances.stop_all(settings, app.extensions["berth.database"])  # redis-servers a test started


def provision(visitor: Browser, worker: Worker, service: str, plan: str, app_name: str = "shop") -> str:
    """Install from the marketplace page, let the worker provision it: the add-on page's path."""
    visitor.get(f"/marketplace/{service}")
    answer = visitor.submit(f"/marketplace/{service}/install", {"app": app_name, "plan": plan})
    assert answer.status_code == 303, text(answer)
    worker.drain()
    return answer.headers["Location"]


@pytest.fixture
def database_page(api: Api, alice: User, signed_in: Browser, worker: Worker) -> str:
    make_app(api, alice, "shop")
    return provision(signed_in, worker, "postgresql", "essential-0")


def open_forms(body: str) -> int:
    return body.count('/open"')


def test_postgres_page_shows_usage_and_masked_credentials_and_no_open(api: Api, alice: User,
                                                                      signed_in: Browser, database_page: str) -> None:
    answer = signed_in.get(database_page)
    body = text(answer)
    assert answer.status_code == 200 and "state-provisioned" in body
    assert "<dt>Status</dt><dd>Available</dd>" in body
    assert 'aria-label="Storage used"' in body and "of 1.0 GB used" in body
    assert "<dt>Connections</dt><dd>up to 20</dd>" in body
    assert "No backups yet." in body and "Capture a backup now" in body
    url = api.get("/apps/shop/config-vars", alice).get_json()["DATABASE_URL"]
    assert url not in html.unescape(body) and "Reveal<span" in body
    assert open_forms(body) == 0 and "Not available" not in body
    resources = text(signed_in.get("/dashboard/apps/shop"))
    assert addon_name(database_page) in resources and open_forms(resources) == 0

    reveal = html.unescape(body).split("reveal=", 1)[1].split("#", 1)[0]
    shown = html.unescape(text(signed_in.get(f"{database_page}?reveal={reveal}")))
    assert f'<div class="secret">{url}</div>' in shown


def test_open_on_a_service_without_sso_leads_to_its_page(signed_in: Browser, database_page: str) -> None:
    signed_in.get(database_page)
    answer = signed_in.submit(f"{database_page}/open")
    assert answer.status_code == 303 and answer.headers["Location"] == database_page
    assert "this page is" in text(signed_in.get(database_page))


def test_the_logs_addon_has_sso_so_open_is_offered(api: Api, alice: User, signed_in: Browser,
                                                   worker: Worker) -> None:
    make_app(api, alice, "shop")
    page = provision(signed_in, worker, "logs", "free")
    body = text(signed_in.get(page))
    assert open_forms(body) == 1 and "Status and usage" not in body
    assert open_forms(text(signed_in.get("/dashboard/apps/shop"))) == 1


def test_capture_needs_the_csrf_token_then_the_backup_is_listed(signed_in: Browser, database_page: str) -> None:
    signed_in.get(database_page)
    forged = signed_in.submit(f"{database_page}/backups", csrf=False)
    assert forged.status_code == 400 and "The form expired" in text(forged)
    assert "No backups yet." in text(signed_in.get(database_page))

    captured = signed_in.submit(f"{database_page}/backups")
    assert captured.status_code == 303, text(captured)
    body = text(signed_in.get(database_page))
    assert "Backup b001 captured." in body
    assert '<th scope="row"><code>b001</code></th>' in body and "<dt>Backups kept</dt><dd>1</dd>" in body


def test_another_user_gets_404_for_the_page_its_secrets_and_its_backups(app: Flask, api: Api,
                                                                         signed_in: Browser,
                                                                         database_page: str) -> None:
    bob = api.make_user("bob@example.com", "another long password")
    make_app(api, bob, "bobs-app")
    intruder = Browser(app)
    intruder.sign_in(bob)
    assert intruder.get(database_page).status_code == 404
    assert intruder.get(f"{database_page}?reveal=x:DATABASE_URL").status_code == 404
    assert intruder.submit(f"{database_page}/backups").status_code == 404
    assert "No backups yet." in text(signed_in.get(database_page))


def test_a_provider_that_is_down_leaves_a_message_in_place_of_its_sections(
        served: BaseWSGIServer, signed_in: Browser, database_page: str) -> None:
    served.shutdown()
    served.server_close()
    answer = signed_in.get(database_page)
    body = text(answer)
    assert answer.status_code == 200
    assert body.count("Not available just now:") == 2  # usage and backups, each with the reason
    assert "could not run info just now; try again shortly." in body
    assert "could not run backups-list just now" in body
    assert "DATABASE_URL" in body and "Change plan" in body  # the rest of the page still works
    refused = signed_in.submit(f"{database_page}/backups")
    assert refused.status_code == 503 and "could not run backups-capture just now" in text(refused)


def test_a_slow_provider_is_given_up_on_in_time(served: BaseWSGIServer, port: int, signed_in: Browser,
                                                database_page: str) -> None:
    served.shutdown()
    served.server_close()
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The closed server's port may take a moment to be free again (a connection still closing).
        assert wait_until(lambda: _bound(silent, port), 5), f"port {port} did not come free"
        silent.listen(8)
        started = time.monotonic()
        body = text(signed_in.get(database_page))
        took = time.monotonic() - started
    assert body.count("Not available just now:") == 2
    assert took < PAGE_READ_SECONDS * 1.8, f"the page waited {took:.1f} s: the calls must go out together"


def test_redis_page_shows_its_limits(api: Api, alice: User, signed_in: Browser, worker: Worker) -> None:
    make_app(api, alice, "shop")
    page = provision(signed_in, worker, "redis", "mini")
    url = api.get("/apps/shop/config-vars", alice).get_json()["REDIS_URL"]
    with redis.Redis.from_url(url) as tenant:  # a 2 MB value, and one client connected while we look
        tenant.set("blob", b"x" * 2_000_000)
        body = text(signed_in.get(page))
    assert "state-provisioned" in body and "REDIS_URL" in body and open_forms(body) == 0
    used = re.search(r'<meter min="0" max="26214400" value="(\d+)"', body)
    assert used and 2_000_000 < int(used.group(1)) < 26_214_400, body
    assert "of 25.0 MB used" in body
    clients = re.search(r"<dt>Clients</dt><dd>(\d+) of (\d+)</dd>", body)
    assert clients and int(clients.group(1)) >= 1, body
    assert url not in html.unescape(body)


@pytest.mark.slow  # the embedded Kafka broker is a JVM
def test_kafka_page_shows_partitions_used_and_its_topics(api: Api, alice: User, signed_in: Browser,
                                                         worker: Worker, settings: Settings) -> None:
    try:
        kafka_broker.ensure_embedded(settings)  # started before, so provisioning is quick
        make_app(api, alice, "shop")
        page = provision(signed_in, worker, "kafka", "basic-0")
        assert "No topics yet" in text(signed_in.get(page))
        created = api.post(f"/apps/shop/addons/{addon_name(page)}/actions/topics-create", alice,
                           json={"params": {"name": "events", "partitions": 3, "retention_ms": 2 * 86_400_000}})
        assert created.status_code == 200, created.get_data(as_text=True)
        body = text(signed_in.get(page))
        prefix = api.get("/apps/shop/config-vars", alice).get_json()["KAFKA_PREFIX"]
        assert f"<dt>Topic prefix</dt><dd><code>{prefix}</code></dd>" in body
        assert "<dt>Topics</dt><dd>1</dd>" in body and "3 of 240 used" in body  # basic-0's limit
        assert f'<th scope="row"><code>{prefix}events</code></th><td>3</td><td>2 days</td>' in body
        assert open_forms(body) == 0 and "Not available" not in body
    finally:
        kafka_broker.stop(settings)


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True
