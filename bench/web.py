"""Server-side render time of the two heaviest pages, beside their floors, in one run.

- marketplace: `GET /marketplace` with 200 add-on services in the catalogue (3 plans each);
- dashboard:   `GET /dashboard/apps/{app}` for an app with 20 provisioned add-ons.

Beside them, through the same WSGI stack in the same run: the JSON API answering the same data
(`GET /addon-services`, `GET /apps/{app}/addons`) and the floor, a bare Flask view returning a constant
(the framework's own cost). Requests go through Flask's test client in this process, so the
figure is the server's time (routing, session cookie, queries, templates), not the network's.
The add-ons are real: provisioned through the broker against the example partner, a real HTTP
server in its own process. Goal: p50 under 50 ms for both pages. Run from the repository root:

    .venv/bin/python bench/web.py [--rounds 200] [--postgres] [--check]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask  # noqa: E402

from berth import create_app  # noqa: E402
from berth.accounts import create_account  # noqa: E402
from berth.addons.postgres.cluster import LocalPostgres  # noqa: E402
from berth.broker import catalogue, provisioning  # noqa: E402
from berth.worker import make_worker  # noqa: E402
from berth.config import Settings  # noqa: E402
from berth.platform import apps  # noqa: E402
from tests.partners.harness import run_example_partner  # noqa: E402

GOAL_MS = 50.0
SERVICES, ADDONS = 200, 20
ACCEPT = "application/vnd.heroku+json; version=3"


def manifest(n: int, base_url: str) -> dict[str, object]:
    plans = [{"name": name, "price": {"cents": cents}, "default": name == "hobby",
              "features": [{"name": "Storage", "value": f"{cents // 10} MB"},
                           {"name": "Connections", "value": str(cents // 100 + 1)}]}
             for name, cents in (("hobby", 0), ("standard", 2500), ("premium", 9000))]
    return {"id": f"bench-service-{n:03d}", "name": f"Bench Service {n}",
            "description": f"Bench add-on number {n}: a store of things, with plans to compare.",
            "categories": [("Data Stores", "Monitoring", "Logging", "Search")[n % 4]],
            "api": {"version": "3", "config_vars_prefix": f"BENCH{n}", "config_vars": [f"BENCH{n}_URL"],
                    "password": f"password-{n:03d}-xxxxxxxx", "sso_salt": f"salt-{n:03d}-xxxxxxxx",
                    "regions": ["*"], "requires": ["many_per_app"],
                    "production": {"base_url": base_url, "sso_url": base_url + "/sso"}},
            "plans": plans}


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    for _ in range(5):
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def setup(app: Flask, base: Path) -> tuple[object, str, str]:
    """200 services, an app with 20 add-ons provisioned through the broker; a signed-in browser."""
    database, settings = app.extensions["berth.database"], app.config["BERTH_SETTINGS"]
    partner_cm = run_example_partner(base)
    partner = partner_cm.__enter__()
    with database.transaction() as session:
        catalogue.register_manifest(session, partner.manifest(requires=("many_per_app",)), owner=None)
        for n in range(SERVICES - 1):
            catalogue.register_manifest(session, manifest(n, partner.url), owner=None)
        account, key = create_account(session, "bench@example.com", "bench password 123")
        token = key.clear_token or ""
        app_row = apps.create_app(session, settings, account, name="bench-app")
        for n in range(ADDONS):
            provisioning.create_addon(session, settings, account.id, app_row.id, "example-partner:test",
                                      attachment_name=f"EXAMPLE_{n}")
    make_worker(database, settings).drain()
    browser = app.test_client()
    page = browser.get("/login")
    csrf = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    signed_in = browser.post("/login", data={"csrf_token": csrf, "email": "bench@example.com",
                                             "password": "bench password 123"})
    assert signed_in.status_code == 303, signed_in.status_code
    setup.partner_cm = partner_cm  # type: ignore[attr-defined]
    return browser, token, "bench-app"


def run(rounds: int, use_postgres: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="berth-bench-web-") as tmp:
        base = Path(tmp)
        server = LocalPostgres(base / "pg") if use_postgres else None
        if server is not None:
            server.start()
        try:
            url = (server.create_database("berth").replace("postgresql://", "postgresql+psycopg://", 1)
                   if server else f"sqlite:///{base / 'berth.sqlite3'}")
            settings = Settings(data_dir=base / "data", database_url=url, builtin_addons=False,
                                provision_wait_seconds=0, allow_private_targets=True)  # partner on loopback
            app = create_app(settings)
            bare = Flask("bare")
            bare.add_url_rule("/", "bare", lambda: "ok")
            bare_client = bare.test_client()
            browser, token, app_name = setup(app, base)
            api = app.test_client()
            headers = {"Accept": ACCEPT, "Authorization": f"Bearer {token}"}

            def check(response: object, marker: str) -> None:
                assert response.status_code == 200, response.status_code  # type: ignore[attr-defined]
                assert marker in response.get_data(as_text=True)  # type: ignore[attr-defined]

            marketplace = browser.get("/marketplace")  # type: ignore[attr-defined]
            check(marketplace, "Bench Service 198")
            dashboard = browser.get(f"/dashboard/apps/{app_name}")  # type: ignore[attr-defined]
            check(dashboard, "EXAMPLE_19")
            rows = [
                ("page `GET /marketplace` (200 services)",
                 lambda: browser.get("/marketplace")),  # type: ignore[attr-defined]
                ("same data, JSON API `GET /addon-services`", lambda: api.get("/addon-services", headers=headers)),
                (f"page `GET /dashboard/apps/{{app}}` ({ADDONS} add-ons)",
                 lambda: browser.get(f"/dashboard/apps/{app_name}")),  # type: ignore[attr-defined]
                ("same data, JSON API `GET /apps/{app}/addons`",
                 lambda: api.get(f"/apps/{app_name}/addons", headers=headers)),
                ("floor: bare Flask view", lambda: bare_client.get("/")),
            ]
            print(f"control plane: {'PostgreSQL' if server else 'SQLite'}; {rounds} requests each, sequential\n")
            print("| request | p50 ms | p90 ms | p99 ms |")
            print("| --- | ---: | ---: | ---: |")
            failures = 0
            for label, call in rows:
                samples = sorted(timed(call, rounds))
                p50 = statistics.median(samples)
                p90, p99 = samples[int(0.9 * (len(samples) - 1))], samples[int(0.99 * (len(samples) - 1))]
                print(f"| {label} | {p50:.1f} | {p90:.1f} | {p99:.1f} |")
                if label.startswith("page") and p50 >= GOAL_MS:
                    failures += 1
            print(f"\ngoal: both pages p50 < {GOAL_MS:g} ms: {'MET' if not failures else 'MISSED'}")
            setup.partner_cm.__exit__(None, None, None)  # type: ignore[attr-defined]
            app.extensions["berth.database"].dispose()
            return failures
        finally:
            if server is not None:
                server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--postgres", action="store_true", help="control plane on PostgreSQL instead of SQLite")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args()
    failures = run(args.rounds, args.postgres)
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
