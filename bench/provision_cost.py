"""Statements and CPU per provision, in process: the two figures that stay steady on a busy machine.

    python bench/provision_cost.py [--provisions 200] [--postgres] [--profile] [--show]

Starts the example partner (sync, a real HTTP server in its own process), creates the app with
`create_app()` on a fresh data dir (SQLite, or a throwaway local PostgreSQL with `--postgres`), registers the partner with
`many_per_app`, then per provision: `POST /apps/{app}/addons` through `app.wsgi_app` (the request
side), then one `Worker.run_one` (the worker side: claim, partner call, apply the answer).
Statements are counted with SQLAlchemy's `before_cursor_execute` on both engines, which also
sees the statements `PreparedStatement` runs on raw DB-API cursors (the admit among them); SQLite's
`BEGIN IMMEDIATE` is counted, psycopg's implicit `BEGIN` is not seen. CPU is this process's time over all provisions; the partner's
own CPU (its own process) is not in it.
"""
from __future__ import annotations

import argparse
import cProfile
import contextlib
import json
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import event  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from berth import create_app  # noqa: E402
from berth.accounts import create_account  # noqa: E402
from berth.addons.postgres.cluster import LocalPostgres  # noqa: E402
from berth.broker import catalogue  # noqa: E402
from berth.worker import make_worker  # noqa: E402
from berth.config import Settings  # noqa: E402
from berth.db import Database  # noqa: E402
from tests.partners.harness import run_example_partner  # noqa: E402

ACCEPT = "application/vnd.heroku+json; version=3"
ADDONS_PER_APP = 20


class StatementCounter:
    """Counts the statements SQLAlchemy sends on a Database's engines, by the side that sent them."""

    def __init__(self, database: Database) -> None:
        self.engines = database.engines
        self.counts: Counter[str] = Counter()
        self.cpu: Counter[str] = Counter()  # process time per side, seconds
        self.side = "other"
        self.texts: list[str] = []
        self.full = False

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.counts[self.side] += 1
        self.texts.append(f"{self.side}: {statement if self.full else statement.split(chr(10))[0][:110]}")

    def __enter__(self) -> "StatementCounter":
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc: Any) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._count)

    @contextlib.contextmanager
    def counting(self, side: str) -> Iterator[None]:
        self.side = side
        started = time.process_time()
        try:
            yield
        finally:
            self.cpu[side] += time.process_time() - started
            self.side = "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provisions", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--postgres", action="store_true", help="control plane on a throwaway local PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the timed provisions")
    parser.add_argument("--show", action="store_true", help="print the statements of one provision")
    parser.add_argument("--show-full", action="store_true", help="with --show: whole statements")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-cost-") as tmp, \
            control_plane(Path(tmp), args.postgres) as url:
        base = Path(tmp)
        settings = Settings(data_dir=base, database_url=url, secret_keys=(Fernet.generate_key().decode(),), port=5000,
                            provision_wait_seconds=0, builtin_addons=False, allow_private_targets=True,
                            rate_limit_per_hour=100_000_000)
        with run_example_partner(base) as partner:
            app = create_app(settings)
            database: Database = app.extensions["berth.database"]
            with database.transaction() as session:
                catalogue.register_manifest(session, partner.manifest(requires=("many_per_app",)), owner=None)
                _account, key = create_account(session, "bench@example.com", None)
                token = key.clear_token
            worker = make_worker(database, app.config["BERTH_SETTINGS"])
            total = args.provisions + args.warmup
            headers = {"Accept": ACCEPT, "Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            apps = [f"cost-{i}" for i in range(-(-total // ADDONS_PER_APP))]
            for name in apps:
                call(app, "POST", "/apps", headers, {"name": name}, 201)

            def provision(n: int) -> None:
                with counter.counting("request"):
                    call(app, "POST", f"/apps/{apps[n % len(apps)]}/addons", headers,
                         {"plan": "example-partner"}, 201)
                with counter.counting("worker"):
                    assert worker.run_one(look_first=False)

            with StatementCounter(database) as counter:
                counter.full = args.show_full
                for n in range(args.warmup):
                    provision(n)
                counter.counts.clear()
                counter.cpu.clear()
                counter.texts.clear()
                profiler = cProfile.Profile() if args.profile else None
                started = time.process_time()
                if profiler:
                    profiler.enable()
                for n in range(args.warmup, total):
                    provision(n)
                if profiler:
                    profiler.disable()
                cpu = time.process_time() - started
                if args.show:
                    print("\n".join(counter.texts[:len(counter.texts) // args.provisions]))
            app.extensions["berth.database"].dispose()
    per = args.provisions
    request, worker_side = counter.counts["request"] / per, counter.counts["worker"] / per
    print(f"{per} provisions on {'PostgreSQL' if args.postgres else 'SQLite'}, "
          f"apps holding up to {ADDONS_PER_APP} add-ons")
    print(f"statements per provision: {request + worker_side:.1f} "
          f"(request {request:.1f} + worker {worker_side:.1f})")
    print(f"CPU per provision (this process; the partner's own excluded): {cpu / per * 1000:.2f} ms "
          f"(request {counter.cpu['request'] / per * 1000:.2f} + worker {counter.cpu['worker'] / per * 1000:.2f}, "
          "the request's test-client environ included, the worker's HTTP client too)")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    return 0


@contextlib.contextmanager
def control_plane(base: Path, postgres: bool) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{base / 'control-plane.sqlite3'}"
        return
    server = LocalPostgres(base / "pg")
    server.start()
    try:
        yield server.create_database("berth").replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.stop()


def call(app: Any, method: str, path: str, headers: dict[str, str], body: dict[str, Any], expected: int) -> None:
    builder = EnvironBuilder(path=path, method=method, headers=headers, data=json.dumps(body))
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    statuses: list[str] = []
    chunks = app.wsgi_app(environ, lambda status, _headers, *_: statuses.append(status))
    payload = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    assert statuses and statuses[0].startswith(str(expected)), (statuses, payload[:300])


if __name__ == "__main__":
    raise SystemExit(main())
