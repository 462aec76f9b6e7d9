"""Where the time of one GET /apps/{app}/config-vars goes, in process (no HTTP server).

    python bench/profile_config_vars.py [--requests 3000] [--postgres] [--profile]

Same fixture as bench/api.py (a fresh data dir, SQLite or with --postgres a throwaway local
PostgreSQL cluster, a real API key, an app with 10 encrypted config vars, a bucket that never
empties). Requests go straight through `app.wsgi_app`, as a gunicorn worker calls it minus HTTP
parsing. Times are this process's CPU time per request and the wall time (CPU plus waiting on
the database); the stages are the statements the request runs, timed alone.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.test import EnvironBuilder  # noqa: E402

from bench.api import throwaway_postgres  # noqa: E402
from berth import create_app  # noqa: E402
from berth.accounts import create_account  # noqa: E402
from berth.config import load_settings  # noqa: E402
from berth.crypto import hash_token  # noqa: E402
from berth.httpapi import ratelimit  # noqa: E402
from berth.platform.config_vars import read_visible_config  # noqa: E402

CONFIG_VARS = {f"BENCH_VAR_{i:02d}": f"value-{i:02d}-" + "x" * 24 for i in range(10)}


def timed(fn: Callable[[], Any], count: int) -> str:
    """'CPU µs  wall µs' per call."""
    fn()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return f"{cpu / count * 1e6:7.1f} {wall / count * 1e6:9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--postgres", action="store_true",
                        help="the control plane on a throwaway local PostgreSQL cluster")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the route")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="berth-profile-")
    cleanup = contextlib.ExitStack()
    try:
        environment = {"BERTH_DATA_DIR": data_dir, "BERTH_RATE_LIMIT_PER_HOUR": "1000000000"}
        if args.postgres:
            environment["BERTH_DATABASE_URL"] = cleanup.enter_context(throwaway_postgres())[0]
        app = create_app(load_settings(environment))
        database = app.extensions["berth.database"]
        with database.transaction() as session:
            account, key = create_account(session, "profile@example.com")
            account_id, token = account.id, key.clear_token or ""
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        client.post("/apps", json={"name": "profile-app"}, headers=headers)
        assert client.patch("/apps/profile-app/config-vars", json=CONFIG_VARS,
                            headers=headers).status_code == 200

        def call(environ: dict[str, Any]) -> Callable[[], None]:
            def run() -> None:
                body = app.wsgi_app(dict(environ), lambda *a: None)
                b"".join(body)
            return run

        route = call(EnvironBuilder(path="/apps/profile-app/config-vars", headers=headers).get_environ())
        not_found = call(EnvironBuilder(path="/no-such-route").get_environ())
        digest = hash_token(token)

        def read() -> None:
            with database.session(write=False) as session:
                read_visible_config(session, account_id, "profile-app")

        print(f"{'':33}{'CPU µs':>7} {'wall µs':>9}   ({'PostgreSQL' if args.postgres else 'SQLite'})")
        print(f"GET config-vars, whole request   {timed(route, args.requests)}")
        print(f"unknown route (Flask floor)      {timed(not_found, args.requests)}")
        print(f"  admit: key + bucket statement  {timed(lambda: ratelimit.admit(database, digest, 10**9), args.requests)}")
        print(f"  read_visible_config            {timed(read, args.requests)}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [route() for _ in range(args.requests)])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        database.dispose()
    finally:
        cleanup.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
