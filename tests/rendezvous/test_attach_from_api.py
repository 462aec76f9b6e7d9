"""A dyno created through POST /apps/{app}/dynos is started by the rendezvous server from its attach
secret: the release's slug and config, the client's env, DYNO=run.N; the secret works once and the
end is recorded on the dyno."""
from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from berth import certificates
from berth.config import Settings
from berth.platform.logs import store
from berth.platform.models import App
from berth.platform.rendezvous import RendezvousServer
from berth.platform.rendezvous.bridge import GREETING, UNKNOWN
from berth.platform.rendezvous.host import DatabaseTickets
from berth.platform.slug_runs import SlugRunner
from berth.platform.slug_store import local_store
from tests.api.test_slugs import uploaded_slug
from tests.conftest import Api, User
from tests.rendezvous.conftest import dial, read_all

pytestmark = pytest.mark.slow


@pytest.fixture
def db_server(app: Flask, settings: Settings, ca, stack: Path, tmp_path: Path):
    issued = certificates.issue_server(ca, "Berth", ["localhost"], ["127.0.0.1"])
    cert, key = tmp_path / "rv.pem", tmp_path / "rv.key"
    certificates.write_private(cert, issued.chain_pem)
    certificates.write_private(key, issued.key_pem)
    runner = SlugRunner(local_store(settings.data_dir), tmp_path / "runs", stack=stack)
    tickets = DatabaseTickets(app.extensions["berth.database"], runner)
    server = RendezvousServer("127.0.0.1", 0, cert, key, tickets).start()  # type: ignore[arg-type]
    yield server
    server.close()


def test_an_api_created_dyno_runs_once_from_its_release(api: Api, alice: User, db_server, ca) -> None:
    assert api.post("/apps", alice, json={"name": "attached"}).status_code == 201
    slug = uploaded_slug(api, alice, "attached", "v1")
    assert api.post("/apps/attached/releases", alice, json={"slug": slug["id"]}).status_code == 201
    assert api.patch("/apps/attached/config-vars", alice, json={"GREETING": "from-config"}).status_code == 200
    body = api.post("/apps/attached/dynos", alice, json={
        "command": 'cat Procfile; read x; echo "$x $GREETING $TERM $DYNO"; exit 3', "attach": True,
        "env": {"TERM": "dumb"}}).get_json()
    secret = body["attach_url"].rsplit("/", 1)[1]
    with dial(db_server, ca) as conn:
        conn.sendall(secret.encode() + b"\r\n")
        assert conn.recv(len(GREETING)) == GREETING
        conn.sendall(b"typed\n\x04")
        output = read_all(conn, deadline=60)
    assert output == b"web: echo v1\ntyped from-config dumb run.1\n"
    shown = api.get("/apps/attached/dynos/run.1", alice).get_json()
    assert (shown["state"], shown["exit_code"]) == ("down", 3)
    with dial(db_server, ca) as again:
        again.sendall(secret.encode() + b"\r\n")
        assert read_all(again) == UNKNOWN


def test_a_detached_dyno_runs_into_the_apps_log(api: Api, alice: User, app: Flask, settings: Settings,
                                                stack: Path, tmp_path: Path) -> None:
    assert api.post("/apps", alice, json={"name": "detached"}).status_code == 201
    slug = uploaded_slug(api, alice, "detached", "v1")
    assert api.post("/apps/detached/releases", alice, json={"slug": slug["id"]}).status_code == 201
    body = api.post("/apps/detached/dynos", alice, json={"command": "echo hi $DYNO; exit 3"}).get_json()
    assert body["attach_url"] is None and body["name"] == "run.1"
    database = app.extensions["berth.database"]
    host = DatabaseTickets(database, SlugRunner(local_store(settings.data_dir), tmp_path / "runs", stack=stack))
    assert host.run_next_detached() and not host.run_next_detached()  # once
    with database.transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == "detached"))
        lines = [store.format_line(line).split(" ", 1)[1] for line in store.read(session, app_id, limit=50)]
    assert "app[run.1]: hi run.1" in lines
    assert "heroku[run.1]: State changed from starting to up" in lines
    assert "heroku[run.1]: Process exited with status 3" in lines
    assert "heroku[run.1]: State changed from up to complete" in lines
    shown = api.get("/apps/detached/dynos/run.1", alice).get_json()
    assert (shown["state"], shown["exit_code"]) == ("down", 3)
