"""First-party add-ons: provisioning and deprovisioning latency through Berth's API, side by side in
one run with the raw floor of the same work done directly against the backend:

- postgresql  floor: CREATE ROLE + CREATE DATABASE + REVOKE with psycopg (and DROP DATABASE
              WITH (FORCE) + DROP ROLE), on the same PostgreSQL server Berth places add-ons on;
- redis       floor: spawn a `redis-server` (same limits) until PING answers (and SHUTDOWN);
- kafka       floor: a topic + the tenant's prefixed ACLs with the admin client (and their deletion),
              on the same broker (only with --kafka: the broker takes a while to start); Berth's
              side is the add-on plus a `topics-create` action, so both make a tenant and a topic.

Berth's time: POST /apps/{app}/addons → `provisioned` (the POST answers it when the provider is
quick; else GET /addons/{id} until it does), then, untimed, the config var must be visible;
deprovision: DELETE → GET /addons/{id} answers 404. Then `--many` Postgres add-ons at concurrency
4 on the one server, all provisioned and destroyed, counting errors.

Goals at p50: postgresql ≤ 2× floor, redis ≤ 3× floor, kafka ≤ 2× floor; deprovision likewise;
200 Postgres add-ons with zero errors. Run from the repository root:

    .venv/bin/python bench/addons.py --rounds 30 --many 200 [--kafka]
"""
from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import psycopg
import redis
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from berth.addons.postgres.cluster import LocalPostgres  # noqa: E402
from tests.builtin_platform import BuiltinPlatform, builtin_platform, server_database  # noqa: E402
from tests.live_server import free_port  # noqa: E402

GOALS = {"postgresql": 2.0, "redis": 3.0, "kafka": 2.0}
VAR = {"postgresql": "DATABASE_URL", "redis": "REDIS_URL", "kafka": "KAFKA_URL"}


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))] if ordered else float("nan")


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


# ---- floors ---------------------------------------------------------------------------------------

def postgres_floor(admin_url: str) -> tuple[float, float]:
    name = "bench_" + secrets.token_hex(6)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        def create() -> None:
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT 20").format(
                sql.Identifier(name), sql.Literal(secrets.token_urlsafe(24))))
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                            sql.Identifier(name)))
            connection.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))

        def drop() -> None:
            connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        return timed(create), timed(drop)


def redis_floor(base: Path) -> tuple[float, float]:
    directory = Path(tempfile.mkdtemp(dir=base, prefix="redis-floor-"))
    port, password = free_port(), secrets.token_hex(16)
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
            "--maxmemory", "25mb", "--maxmemory-policy", "noeviction", "--maxclients", "20", "--save", "",
            "--appendonly", "no", "--dir", str(directory), "--daemonize", "no"]
    process: subprocess.Popen[bytes] | None = None

    def start() -> None:
        nonlocal process
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, password=password, socket_connect_timeout=1)
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.002)

    def stop() -> None:
        assert process is not None
        process.terminate()
        process.wait()
        shutil.rmtree(directory)
    return timed(start), timed(stop)


def kafka_floor(settings: Any) -> tuple[float, float]:
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       NewTopic, ResourcePatternType, ResourceType)

    from berth.addons.kafka import broker as kafka_broker

    found = kafka_broker.endpoints(settings)
    assert found is not None, "the embedded broker is not running"
    admin = AdminClient(kafka_broker.admin_client_config(settings))  # the admin listener wants mTLS
    prefix = "floor-" + secrets.token_hex(4) + "."
    principal = f"User:CN={prefix}"
    grants = [(kind, operation) for kind, operations in (
        (ResourceType.TOPIC, (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE)),
        (ResourceType.GROUP, (AclOperation.READ, AclOperation.DESCRIBE))) for operation in operations]
    acls = [AclBinding(kind, prefix, ResourcePatternType.PREFIXED, principal, "*", operation,
                       AclPermissionType.ALLOW) for kind, operation in grants]
    filters = [AclBindingFilter(kind, prefix, ResourcePatternType.PREFIXED, principal, "*", operation,
                                AclPermissionType.ALLOW) for kind, operation in grants]

    def create() -> None:
        for future in admin.create_acls(acls).values():
            future.result()
        for future in admin.create_topics([NewTopic(prefix + "events", 8, 1)]).values():
            future.result()

    def drop() -> None:
        for future in admin.delete_topics([prefix + "events"]).values():
            future.result()
        for future in admin.delete_acls(filters).values():
            future.result()
    return timed(create), timed(drop)


# ---- Berth ----------------------------------------------------------------------------------------

def berth_round(platform: BuiltinPlatform, app: str, plan: str, var: str) -> tuple[float, float]:
    started = time.perf_counter()
    addon = platform.provision(app, plan)
    if plan == "kafka" and addon["state"] == "provisioned":  # as the floor: the tenant and a topic
        topic = platform.call("POST", f"/apps/{app}/addons/{addon['id']}/actions/topics-create",
                              params={"name": "events", "partitions": 8})
        if topic.status_code != 200:
            raise RuntimeError(f"topics-create: {topic.status_code} {topic.text[:200]}")
    provisioned = (time.perf_counter() - started) * 1000
    if addon["state"] != "provisioned" or var not in platform.config(app):
        raise RuntimeError(f"{plan}: {addon.get('state')} {addon.get('failure_message')}")
    started = time.perf_counter()
    answer = platform.call("DELETE", f"/apps/{app}/addons/{addon['id']}")
    if answer.status_code != 200:
        raise RuntimeError(f"destroy: {answer.status_code} {answer.text[:200]}")
    while platform.call("GET", f"/addons/{addon['id']}").status_code != 404:
        time.sleep(0.002)
    return provisioned, (time.perf_counter() - started) * 1000


def run(rounds: int, many: int, with_kafka: bool, only: list[str] | None = None) -> int:
    failures = 0
    with tempfile.TemporaryDirectory(prefix="berth-bench-addons-") as tmp:
        base = Path(tmp)
        server = LocalPostgres(base / "pg")
        server.start()
        try:
            (base / "berth").mkdir()
            with builtin_platform(base / "berth", server.admin_url(), "bench@example.com") as platform:
                settings, _ = server_database(platform.server)
                for name in ["bench"] + [f"bench-{i}" for i in range(-(-many // 20))]:
                    assert platform.call("POST", "/apps", name=name).status_code == 201
                services = ["postgresql", "redis"] + (["kafka"] if with_kafka else [])
                if only:
                    services = [service for service in services if service in only]
                floors: dict[str, Callable[[], tuple[float, float]]] = {
                    "postgresql": lambda: postgres_floor(server.admin_url()),
                    "redis": lambda: redis_floor(base),
                    "kafka": lambda: kafka_floor(settings)}
                if with_kafka:
                    berth_round(platform, "bench", "kafka", VAR["kafka"])  # starts the broker: not timed
                print(f"{rounds} rounds each, alternating floor and Berth, concurrency 1\n")
                print("| service | floor provision p50 | Berth provision p50 (p90) | ratio | floor deprovision p50 |"
                      " Berth deprovision p50 (p90) | ratio | goal |")
                print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
                for service in services:
                    floor_up, floor_down, berth_up, berth_down = [], [], [], []
                    for _ in range(2):  # warm-up
                        floors[service]()
                        berth_round(platform, "bench", service, VAR[service])
                    for _ in range(rounds):
                        up, down = floors[service]()
                        floor_up.append(up)
                        floor_down.append(down)
                        up, down = berth_round(platform, "bench", service, VAR[service])
                        berth_up.append(up)
                        berth_down.append(down)
                    ratio_up, ratio_down = p50(berth_up) / p50(floor_up), p50(berth_down) / p50(floor_down)
                    met = ratio_up <= GOALS[service] and ratio_down <= GOALS[service]
                    failures += not met
                    print(f"| {service} | {p50(floor_up):.1f} | {p50(berth_up):.1f} ({p90(berth_up):.1f}) | "
                          f"{ratio_up:.2f}× | {p50(floor_down):.1f} | {p50(berth_down):.1f} ({p90(berth_down):.1f})"
                          f" | {ratio_down:.2f}× | ≤ {GOALS[service]:g}× {'MET' if met else 'MISSED'} |")
                if many:
                    failures += many_postgres(platform, many)
        finally:
            server.stop()
    return failures


def many_postgres(platform: BuiltinPlatform, many: int) -> int:
    errors: list[str] = []
    made: list[tuple[str, str]] = []

    def one(n: int) -> None:
        app = f"bench-{n // 20}"
        addon = platform.provision(app, "postgresql")
        if addon["state"] != "provisioned":
            errors.append(f"{addon.get('state')}: {addon.get('failure_message')}")
        else:
            made.append((app, addon["id"]))
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(many)))
    took = time.perf_counter() - started
    removed = 0
    with ThreadPoolExecutor(4) as pool:
        for answer in pool.map(lambda pair: platform.call("DELETE", f"/apps/{pair[0]}/addons/{pair[1]}"), made):
            removed += answer.status_code == 200
    print(f"\n{many} Postgres add-ons on one server at concurrency 4: {len(made)} provisioned in {took:.1f} s, "
          f"{len(errors)} errors, {removed} destroyed" + (f"; first error: {errors[0]}" if errors else ""))
    return 1 if errors or removed != len(made) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--many", type=int, default=200, help="Postgres add-ons on one server (0: skip)")
    parser.add_argument("--kafka", action="store_true", help="include Kafka (starts the embedded broker)")
    parser.add_argument("--only", action="append", choices=("postgresql", "redis", "kafka"),
                        help="bench only this service (repeatable; kafka also needs --kafka)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    failures = run(args.rounds, args.many, args.kafka, args.only)
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
