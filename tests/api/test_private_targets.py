"""Server-side request forgery: with private targets not allowed (Berth's default), no user's drain
and no partner's base_url makes Berth connect to loopback, private or link-local addresses; only
Berth's own provider routes are reached there."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from berth.broker import catalogue
from berth.worker import make_worker
from berth.config import Settings
from berth.outbound import TargetPolicy
from berth.platform.logs import drains, store
from berth.platform.logs.forwarder import Forwarder
from berth.platform.models import App
from tests.api.test_catalogue import manifest, push
from tests.conftest import Api, User
from tests.live_server import ROOT, clean_env
from tests.partners.harness import ExamplePartner

PRIVATE_HOSTS = ["localhost", "127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "169.254.169.254",
                 "10.0.0.7", "2130706433"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(allow_private_targets=False)  # as `make run` has it


class _Counting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[ThreadingHTTPServer]:
    """A drain receiver on loopback (Redis, Postgres or an admin port, as far as Berth can tell)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_a_partner_cannot_push_a_private_base_url(api: Api, alice: User, host: str) -> None:
    document = manifest()
    document["api"]["production"] = {"base_url": f"https://{host}:6379/heroku/resources"}
    refused = push(api, alice, document)
    assert refused.status_code == 422, refused.get_json()
    body = refused.get_json()
    assert body["id"] == "invalid_params" and "BERTH_ALLOW_PRIVATE_TARGETS" in body["message"]
    assert "api.production.base_url" in body["errors"]
    assert api.get("/addon-services/acme-cache", alice).status_code == 404  # nothing registered


@pytest.mark.parametrize("url", [f"http://{host}:6379/" for host in PRIVATE_HOSTS]
                         + ["syslog://localhost:514", "https://user:pw@127.0.0.1/x"])
def test_a_user_cannot_drain_logs_to_a_private_address(api: Api, alice: User, url: str) -> None:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    refused = api.post("/apps/shop/log-drains", alice, json={"url": url})
    assert refused.status_code == 422 and "private" in refused.get_json()["message"]
    assert api.get("/apps/shop/log-drains", alice).get_json() == []


def test_a_public_drain_is_still_accepted(api: Api, alice: User) -> None:
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    assert api.post("/apps/shop/log-drains", alice, json={"url": "syslog://8.8.8.8:514"}).status_code == 201


def test_the_worker_does_not_call_a_partner_on_a_private_address(app: Flask, api: Api, alice: User,
                                                                 partner: ExamplePartner) -> None:
    """Registered by the operator (no check at registration): refused when it would be called."""
    partner.set_mode("sync")
    with app.extensions["berth.database"].transaction() as session:
        catalogue.register_manifest(session, partner.manifest(), owner=None)
    before = partner.calls("provision")
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    created = api.post("/apps/shop/addons", alice, json={"plan": partner.service}).get_json()
    make_worker(app.extensions["berth.database"], app.config["BERTH_SETTINGS"]).drain()
    addon = api.get(f"/addons/{created['id']}", alice).get_json()
    assert addon["state"] == "deprovisioned"  # failed, as the Heroku CLI reads it
    assert "BERTH_ALLOW_PRIVATE_TARGETS" in addon["failure_message"]
    assert partner.calls("provision") == before


def _drain_with_lines(app: Flask, api: Api, alice: User, url: str) -> str:
    """A drain added while its name still looked public (here: added with private targets allowed)."""
    assert api.post("/apps", alice, json={"name": "shop"}).status_code == 201
    with app.extensions["berth.database"].transaction() as session:
        shop = session.scalar(select(App).where(App.name == "shop"))
        assert shop is not None
        drain = drains.add_drain(session, shop, url, targets=TargetPolicy(allow_private=True))
        store.append(session, shop.id, [store.Entry("app", "web.1", f"line {n}") for n in range(2)])
        return drain.id


def _app_log(app: Flask) -> list[str]:
    with app.extensions["berth.database"].session(write=False) as session:
        shop_id = session.scalar(select(App.id).where(App.name == "shop")) or ""
        return [line.message for line in store.read(session, shop_id, limit=100)]


def test_the_forwarder_refuses_a_drain_that_resolves_to_loopback(app: Flask, api: Api, alice: User,
                                                                 receiver: ThreadingHTTPServer,
                                                                 settings: Settings) -> None:
    port = receiver.server_address[1]
    _drain_with_lines(app, api, alice, f"http://localhost:{port}/drain")
    seen = len(receiver.paths)  # type: ignore[attr-defined]
    forwarder = Forwarder(app.extensions["berth.database"], TargetPolicy.from_settings(settings))
    assert forwarder.deliver_once() == 0
    assert len(receiver.paths) == seen  # type: ignore[attr-defined]
    refusals = [line for line in _app_log(app) if "drain refused" in line]
    assert len(refusals) == 1 and "BERTH_ALLOW_PRIVATE_TARGETS" in refusals[0]
    forwarder.deliver_once()  # the refusal line is refused in turn, and not reported again
    assert len([line for line in _app_log(app) if "drain refused" in line]) == 1


def test_the_forwarder_delivers_to_berths_own_provider_routes(app: Flask, api: Api, alice: User,
                                                              receiver: ThreadingHTTPServer,
                                                              settings: Settings) -> None:
    """The first-party logs add-on's drain is on Berth's own URL, under /providers/."""
    port = receiver.server_address[1]
    own = settings.with_overrides(port=port)
    _drain_with_lines(app, api, alice, f"http://drain:secret@127.0.0.1:{port}/providers/logs/drains/x")
    forwarder = Forwarder(app.extensions["berth.database"], TargetPolicy.from_settings(own))
    assert forwarder.deliver_once() == 2
    assert receiver.paths[-1] == "/providers/logs/drains/x"  # type: ignore[attr-defined]


def test_the_operator_is_told_too(tmp_path: Any, partner: ExamplePartner) -> None:
    """`berth.admin register-addon` checks the base URL with the installation's policy."""
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(partner.manifest()))
    env = {**clean_env(), "BERTH_DATA_DIR": str(tmp_path / "data")}
    argv = [sys.executable, "-m", "berth.admin", "register-addon", str(manifest_file)]
    refused = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "BERTH_ALLOW_PRIVATE_TARGETS" in refused.stderr, refused.stderr
    allowed = subprocess.run(argv, cwd=ROOT, env={**env, "BERTH_ALLOW_PRIVATE_TARGETS": "1"},
                             capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr
