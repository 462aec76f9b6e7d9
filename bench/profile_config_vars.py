"""Where the time of one GET /apps/{app}/config-vars goes, in process (no HTTP server).

    python bench/profile_config_vars.py [--requests 3000] [--profile]

Same fixture as bench/api.py (a fresh data dir, SQLite, a real API key, an app with 10
encrypted config vars, a bucket that never empties). Requests go straight through
`app.wsgi_app`, as a gunicorn worker calls it minus HTTP parsing. Times are this process's
CPU time per request; the stages are the two statements the request runs, timed alone.
"""
from __future__ import annotations

import argparse
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

from berth import create_app  # noqa: E402
from berth.accounts import create_account  # noqa: E402
from berth.config import load_settings  # noqa: E402
from berth.crypto import hash_token  # noqa: E402
from berth.httpapi import ratelimit  # noqa: E402
from berth.platform.config_vars import read_visible_config  # noqa: E402

CONFIG_VARS = {f"BENCH_VAR_{i:02d}": f"value-{i:02d}-" + "x" * 24 for i in range(10)}


def cpu_us(fn: Callable[[], Any], count: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(count):
        fn()
    return (time.process_time() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the route")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="berth-profile-")
    try:
        app = create_app(load_settings({"BERTH_DATA_DIR": data_dir,
                                        "BERTH_RATE_LIMIT_PER_HOUR": "1000000000"}))
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

        print(f"GET config-vars, whole request   {cpu_us(route, args.requests):7.1f} µs")
        print(f"unknown route (Flask floor)      {cpu_us(not_found, args.requests):7.1f} µs")
        print(f"  admit: key + bucket statement  {cpu_us(lambda: ratelimit.admit(database, digest, 10**9), args.requests):7.1f} µs")
        print(f"  read_visible_config            {cpu_us(read, args.requests):7.1f} µs")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [route() for _ in range(args.requests)])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
