"""Shipping nginx's access log into the apps' log streams: in bulk (a pass's lines in one transaction),
never losing a line when the database is away, never stuck on an app that went away."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import event, select

from berth.db import Database
from berth.platform.logs.models import LogLine
from berth.platform.router import AppRoute, Dyno, RoutingTable
from berth.platform.router.router_log import RouterLogShipper


def request_record(app: str, number: int) -> dict[str, str]:
    return {"app": app, "code": "", "method": "GET", "path": f"/{number}", "host": f"{app}.apps.test",
            "request_id": f"req-{number}", "fwd": "127.0.0.1", "upstream": "127.0.0.1:5001", "dyno": "web.1",
            "connect": "0.000", "service": "0.002", "status": "200", "bytes": "12", "scheme": "http"}


def write_requests(access_log: Path, app: str, numbers: range) -> None:
    with access_log.open("ab") as out:
        out.write(b"".join(json.dumps(request_record(app, n)).encode() + b"\n" for n in numbers))


def route(app: str, app_id: str) -> AppRoute:
    return AppRoute(app, (f"{app}.apps.test",), (Dyno("web.1", "127.0.0.1:5001"),), app_id=app_id)


def router_paths(database: Database, app_id: str) -> list[str]:
    with database.session(write=False) as session:
        messages = session.scalars(select(LogLine.message).where(LogLine.app_id == app_id, LogLine.process == "router")
                                   .order_by(LogLine.id))
        return [message.split(" path=", 1)[1].split(" ", 1)[0] for message in messages]


def test_a_pass_ships_every_line_in_one_transaction_in_order(app, api, alice, tmp_path: Path) -> None:
    shop = api.post("/apps", alice, json={"name": "bulky"}).get_json()
    database: Database = app.extensions["berth.database"]
    access_log = tmp_path / "access.json"
    shipper = RouterLogShipper(access_log, database, lambda: RoutingTable((route("bulky", shop["id"]),)), lambda: None)
    write_requests(access_log, "bulky", range(300))
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    event.listen(database.write_engine, "commit", committed)
    try:
        assert shipper.ship_once() == 300
    finally:
        event.remove(database.write_engine, "commit", committed)
    assert len(commits) == 1  # not one per few dozen lines: under load that cost more than nginx itself
    assert router_paths(database, shop["id"]) == [f'"/{n}"' for n in range(300)]
    assert shipper.ship_once() == 0


def test_lines_wait_in_the_access_log_while_the_database_is_away(app, api, alice, tmp_path: Path) -> None:
    shop = api.post("/apps", alice, json={"name": "patient"}).get_json()
    database: Database = app.extensions["berth.database"]
    access_log = tmp_path / "access.json"
    table = RoutingTable((route("patient", shop["id"]),))
    write_requests(access_log, "patient", range(5))
    away = Database(f"sqlite:///{tmp_path / 'no-such-dir' / 'berth.sqlite3'}")  # cannot be opened
    try:
        try:
            RouterLogShipper(access_log, away, lambda: table, lambda: None).ship_once()
        except Exception:
            pass  # the caller (RouterService.ship_forever) logs it and tries again
        else:
            raise AssertionError("shipping into a database that cannot be reached reported success")
    finally:
        away.dispose()
    assert RouterLogShipper(access_log, database, lambda: table, lambda: None).ship_once() == 5
    assert router_paths(database, shop["id"]) == [f'"/{n}"' for n in range(5)]


def test_lines_of_an_app_destroyed_meanwhile_go_nowhere_and_the_others_ship(app, api, alice, tmp_path: Path) -> None:
    kept = api.post("/apps", alice, json={"name": "kept"}).get_json()
    gone = api.post("/apps", alice, json={"name": "gone"}).get_json()
    database: Database = app.extensions["berth.database"]
    access_log = tmp_path / "access.json"
    # The table of the moment still routes the app destroyed since.
    table = RoutingTable((route("gone", gone["id"]), route("kept", kept["id"])))
    assert api.delete("/apps/gone", alice).status_code == 200
    write_requests(access_log, "gone", range(3))
    write_requests(access_log, "kept", range(3, 5))
    shipper = RouterLogShipper(access_log, database, lambda: table, lambda: None)
    assert shipper.ship_once() == 2
    assert router_paths(database, kept["id"]) == ['"/3"', '"/4"']
    write_requests(access_log, "kept", range(5, 6))
    assert shipper.ship_once() == 1  # not stuck on the lines nobody can have
