"""The Open Service Broker layer's cost: provision → last_operation succeeded → bind for a plan on
the shared Postgres server (--plan, default essential-0), against Berth's own add-on API doing the
same work, side by side in one run:

- osb:   PUT /osb/v2/service_instances/{id}?accepts_incomplete=true, then, on a 202, GET
         …/last_operation?operation=… until `succeeded` (a plan Berth may finish synchronously
         answers 201 when the worker is done within the add-on API's short wait: nothing to poll),
         then PUT …/service_bindings/{bid} (201 with the credentials, DATABASE_URL among them),
         signed in as a platform (`create-osb-client`);
- osb-sync (shown, not the goal's; only for plans a platform may provision synchronously, such as
         essential-0): the same PUT without accepts_incomplete (201 once the worker is done), then
         the binding;
- berth: POST /apps/{app}/addons until Berth says `provisioned` (the POST normally does: the web
         process waits for the worker up to BERTH_PROVISION_WAIT_SECONDS; else GET /addons/{id}
         until it does), then GET /apps/{app}/config-vars, which must hold the attachment's DATABASE_URL.

Both poll every --poll-interval seconds (the OSB side ignores Retry-After, which a platform would
honour: the figure is the broker's work, not a platform's patience) over one kept-alive
requests.Session each. Rounds alternate osb and berth after a warm-up of each (which also makes
the platform's app); each round's instance and add-on are removed afterwards, untimed. Reported:
the median (and p90) of each and the ratio of the medians; the goal is osb ≤ 1.2× berth. Beside it,
how far that ratio can be trusted: a 90% bootstrap interval (the rounds resampled, each osb round
with the berth round of its alternation). Provisioning is most of each round and swings with
whatever else the machine does, so on a shared machine that interval is wide; compare runs by it.
Starts a throwaway PostgreSQL cluster for the databases, gunicorn and a worker (the helpers in
tests/). Run from the repository root:

    .venv/bin/python bench/osb.py [--plan essential-0] [--rounds 30] [--poll-interval 0.01] [--check]

`--plan essential-1` (asynchronous only) always takes the 202 → last_operation path.
"""
from __future__ import annotations

import argparse
import platform as host
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.addons import p90  # noqa: E402
from berth.addons.postgres.cluster import LocalPostgres  # noqa: E402
from tests.builtin_platform import BuiltinPlatform, builtin_platform  # noqa: E402
from tests.live_server import ACCEPT  # noqa: E402
from tests.osb.published_client import create_osb_client  # noqa: E402

GOAL = 1.2
SERVICE = "postgresql"
OSB_HEADERS = {"X-Broker-API-Version": "2.17"}
PLATFORM_CONTEXT = {"platform": "kubernetes", "namespace": "bench", "clusterid": "bench"}


class RoundFailed(Exception):
    pass


class AsyncOnly(RoundFailed):
    """The plan cannot be provisioned without accepts_incomplete (422 AsyncRequired)."""


def expect(answer: requests.Response, *statuses: int) -> Any:
    if answer.status_code not in statuses:
        raise RoundFailed(f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text[:300]}")
    return answer.json()


def wait_until(poll: Callable[[], bool], interval: float, what: str, timeout: float = 60) -> int:
    """Calls `poll` every `interval` seconds until it is true; how many calls it took."""
    deadline, calls = time.perf_counter() + timeout, 1
    while not poll():
        if time.perf_counter() > deadline:
            raise RoundFailed(f"{what}: not done after {timeout} s")
        time.sleep(interval)
        calls += 1
    return calls


class OsbSide:
    """A platform provisioning and binding through /osb, as the OSB spec's async flow goes."""

    def __init__(self, url: str, credential: tuple[str, str], service_id: str, plan_id: str, interval: float,
                 *, asynchronous: bool = True):
        self.broker, self.interval, self.asynchronous = f"{url}/osb/v2", interval, asynchronous
        self.ids = {"service_id": service_id, "plan_id": plan_id}
        self.http = requests.Session()
        self.http.auth = credential
        self.http.headers.update(OSB_HEADERS)

    def last_state(self, instance: str, operation: str) -> str:
        answer = self.http.get(f"{self.broker}/service_instances/{instance}/last_operation",
                               params={**self.ids, "operation": operation}, timeout=30)
        state = expect(answer, 200)["state"]
        if state == "failed":
            raise RoundFailed(f"provision of {instance} failed: {answer.text[:300]}")
        return str(state)

    def round(self) -> tuple[float, int]:
        """Seconds for provision → succeeded → bound, and the polls it took; then, untimed, cleans up."""
        instance, binding = str(uuid.uuid4()), str(uuid.uuid4())
        started = time.perf_counter()
        answer = self.http.put(f"{self.broker}/service_instances/{instance}",
                               params={"accepts_incomplete": "true"} if self.asynchronous else {},
                               json={**self.ids, "organization_guid": "bench", "space_guid": "bench",
                                     "context": PLATFORM_CONTEXT}, timeout=60)
        if answer.status_code == 422 and "AsyncRequired" in answer.text:
            raise AsyncOnly(answer.text[:300])
        made = expect(answer, 201, 202) if self.asynchronous else expect(answer, 201)
        polls = 0
        if answer.status_code == 202:
            polls = wait_until(lambda: self.last_state(instance, made["operation"]) == "succeeded", self.interval,
                               f"OSB provision {instance}")
        bound = expect(self.http.put(f"{self.broker}/service_instances/{instance}/service_bindings/{binding}",
                                     json={**self.ids, "context": PLATFORM_CONTEXT}, timeout=60), 201)
        took = time.perf_counter() - started
        if not str(bound.get("credentials", {}).get("DATABASE_URL", "")).startswith("postgres"):
            raise RoundFailed(f"binding without DATABASE_URL: {sorted(bound.get('credentials', {}))}")
        self.remove(instance, binding)
        return took, polls

    def remove(self, instance: str, binding: str) -> None:
        expect(self.http.delete(f"{self.broker}/service_instances/{instance}/service_bindings/{binding}",
                                params=self.ids, timeout=60), 200)
        gone = self.http.delete(f"{self.broker}/service_instances/{instance}",
                                params={**self.ids, "accepts_incomplete": "true"}, timeout=60)
        body = expect(gone, 200, 202)
        if gone.status_code == 202:
            def finished() -> bool:
                answer = self.http.get(f"{self.broker}/service_instances/{instance}/last_operation",
                                       params={**self.ids, "operation": body.get("operation", "")}, timeout=30)
                return answer.status_code == 410 or expect(answer, 200)["state"] == "succeeded"
            wait_until(finished, 0.05, f"OSB deprovision {instance}")


class BerthSide:
    """An app developer adding the same plan through Berth's own add-on API."""

    def __init__(self, url: str, key: str, app: str, plan: str, interval: float):
        self.url, self.app, self.plan, self.interval = url, app, plan, interval
        self.http = requests.Session()
        self.http.headers.update({"Accept": ACCEPT, "Authorization": f"Bearer {key}"})

    def round(self) -> tuple[float, int]:
        started = time.perf_counter()
        addon = expect(self.http.post(f"{self.url}/apps/{self.app}/addons", json={"plan": f"{SERVICE}:{self.plan}"},
                                      timeout=60), 201)

        def provisioned() -> bool:
            nonlocal addon
            if addon["state"] == "provisioning":
                addon = expect(self.http.get(f"{self.url}/addons/{addon['id']}", timeout=30), 200)
            if addon["state"] not in ("provisioning", "provisioned"):
                raise RoundFailed(f"add-on {addon['id']} is {addon['state']}: {addon.get('failure_message')}")
            return addon["state"] == "provisioned"
        polls = wait_until(provisioned, self.interval, f"add-on {addon['id']}") - 1  # the first look is the POST's
        config = expect(self.http.get(f"{self.url}/apps/{self.app}/config-vars", timeout=30), 200)
        took = time.perf_counter() - started
        if not str(config.get("DATABASE_URL", "")).startswith("postgres"):
            raise RoundFailed(f"no DATABASE_URL in {self.app}'s config: {sorted(config)}")
        expect(self.http.delete(f"{self.url}/apps/{self.app}/addons/{addon['id']}", timeout=60), 200)
        wait_until(lambda: self.http.get(f"{self.url}/addons/{addon['id']}", timeout=30).status_code == 404, 0.05,
                   f"add-on {addon['id']} removed")
        return took, polls


def ratio_interval(osb: list[float], berth: list[float], *, resamples: int = 2000) -> tuple[float, float]:
    """The 5th and 95th percentiles of the ratio of medians over the rounds resampled with
    replacement (paired: a round's osb and berth figures stay together); seeded, so repeatable."""
    draw = random.Random(0)
    ratios = []
    for _ in range(resamples):
        picked = [draw.randrange(len(osb)) for _ in osb]
        ratios.append(statistics.median([osb[i] for i in picked]) / statistics.median([berth[i] for i in picked]))
    ratios.sort()
    return ratios[int(0.05 * resamples)], ratios[int(0.95 * resamples) - 1]


def plan_ids(platform: BuiltinPlatform, plan_name: str) -> tuple[str, str]:
    service_id = platform.call("GET", f"/addon-services/{SERVICE}").json()["id"]
    plan = platform.call("GET", f"/addon-services/{SERVICE}/plans/{SERVICE}:{plan_name}").json()
    return service_id, plan["id"]


def run(plan: str, rounds: int, warmup: int, interval: float) -> dict[str, dict[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="berth-bench-osb-") as tmp:
        base = Path(tmp)
        databases = LocalPostgres(base / "pg")
        databases.start()
        try:
            (base / "berth").mkdir()
            email = "bench@example.com"
            with builtin_platform(base / "berth", databases.admin_url(), email) as platform:
                assert platform.call("POST", "/apps", name="bench").status_code == 201
                service_id, plan_id = plan_ids(platform, plan)
                credential = create_osb_client(platform.server, email)
                sides = {"osb": OsbSide(platform.server.url, credential, service_id, plan_id, interval),
                         "osb-sync": OsbSide(platform.server.url, credential, service_id, plan_id, interval,
                                             asynchronous=False),
                         "berth": BerthSide(platform.server.url, platform.key, "bench", plan, interval)}
                try:
                    sides["osb-sync"].round()
                except AsyncOnly:
                    del sides["osb-sync"]  # an async-only plan: platforms must accept incomplete
                for _ in range(warmup):
                    for side in sides.values():
                        side.round()
                results: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "polls": []} for name in sides}
                for _ in range(rounds):  # alternating, so both see the same machine
                    for name, side in sides.items():
                        took, polls = side.round()
                        results[name]["seconds"].append(took)
                        results[name]["polls"].append(polls)
                return results
        finally:
            databases.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", default="essential-0", help="a postgresql plan (default essential-0)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--poll-interval", type=float, default=0.01, help="seconds between polls, both sides")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio is over {GOAL} or a round failed")
    args = parser.parse_args()
    try:
        results = run(args.plan, args.rounds, args.warmup, args.poll_interval)
    except RoundFailed as failed:
        print(f"a round failed: {failed}", file=sys.stderr)
        return 1
    print(f"{args.rounds} rounds each after {args.warmup} warm-up, alternating; {SERVICE}:{args.plan}; "
          f"polls every {args.poll_interval * 1000:.0f} ms; {host.node()} ({host.machine()}, "
          f"{host.python_implementation()} {host.python_version()})\n")
    print("| path | median ms | p90 ms | median polls |")
    print("| --- | ---: | ---: | ---: |")
    labels = {"osb": "OSB: PUT instance (201, or 202 → last_operation `succeeded`) → PUT binding (201)",
              "osb-sync": "OSB, synchronous: PUT instance (201) → PUT binding (201)",
              "berth": "Berth: POST /apps/{app}/addons → `provisioned` → config vars"}
    for name, label in labels.items():
        if name not in results:
            continue
        ms = [t * 1000 for t in results[name]["seconds"]]
        print(f"| {label} | {statistics.median(ms):.1f} | {p90(ms):.1f} | "
              f"{statistics.median(results[name]['polls']):.0f} |")
    berth = statistics.median(results["berth"]["seconds"])
    ratio = statistics.median(results["osb"]["seconds"]) / berth
    met = ratio <= GOAL
    sync = (f" (synchronous OSB: {statistics.median(results['osb-sync']['seconds']) / berth:.2f}×)"
            if "osb-sync" in results else "")
    low, high = ratio_interval(results["osb"]["seconds"], results["berth"]["seconds"])
    print(f"\nosb / berth (medians) = {ratio:.2f}× (90% bootstrap interval {low:.2f}–{high:.2f}×); "
          f"goal ≤ {GOAL}×: {'MET' if met else 'MISSED'}{sync}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
