"""Run-core speed (issue 12), each measure beside its floor in the same run:

- scale 0 → 10 web dynos until all ten answer through the router, against spawning the same ten
  server processes directly (no sandbox, no runner, no router) and waiting until each answers on its
  port. Goal ≤ 1.5× the floor.
- throughput and p99 through nginx to one dyno against straight to that dyno's port, with wrk.
  Goal ≥ 0.85× the throughput, p99 at most 2 ms more. Shown beside it: straight to the dyno with the
  request headers the router adds (X-Forwarded-*, X-Request-Id, X-Request-Start, Via), since a
  Python dyno parsing those six headers alone serves ~20% fewer requests a second.
- a rolling deploy under load: steady requests through the router while a new release replaces two
  web dynos, against the same load with no deploy. Goal: 0 failed requests, p99 added < 100 ms. The
  client sends a GET again once when the kept-alive connection it reused is closed before any answer,
  as browsers and curl do (nginx's reload closes idle connections of its retiring workers); how
  many were sent again is counted and shown.

The log pipeline (a chatty dyno to a tail client) is bench/logs.py. Starts a live Berth, its builder
and its runner (the helpers in tests/, as the runner tests do) with the real sandbox and nginx.
Run from the repository root on a quiet machine:

    .venv/bin/python bench/run.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import Result, run_wrk, wrk_version  # noqa: E402
from berth.supervise.ports import free_loopback_port  # noqa: E402
from berth.supervise.stack import require_stack  # noqa: E402
from tests.builds.conftest import build_platform  # noqa: E402
from tests.live_server import ROOT, free_port  # noqa: E402
from tests.runner.conftest import SERVER, RunPlatform, browser_like_session  # noqa: E402

DYNOS = 10
# The floor's servers run on the interpreter the dynos run (the stack is Debian bookworm's, and so is
# this host's /usr/bin/python3), started directly: not through a `python3` on PATH that may be a
# version manager's shim (pyenv's adds ~0.1 s of bash to every start).
FLOOR_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# What nginx adds to every request it proxies (nginx_config's proxy_set_header), with values of their shape.
ROUTER_HEADERS = {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Port": "8080",
                  "X-Request-Start": "1796680131723", "X-Request-Id": "0f9b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d",
                  "Via": "1.1 vegur"}


def wait(check, timeout: float = 120.0, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting")
        time.sleep(interval)


def answers(url: str, headers: dict[str, str] | None = None) -> requests.Response | None:
    try:
        return requests.get(url, headers=headers or {}, timeout=5)
    except requests.RequestException:
        return None


def scale_through_berth(platform: RunPlatform, app: str) -> float:
    """web 0 → 10 until each of the ten dynos has answered through the router, as the floor waits until
    each server has answered on its port (nginx picks a dyno at random, as Heroku's router does, so
    requests go on until the last one has been picked)."""
    started = time.perf_counter()
    platform.scale(app, web=DYNOS)
    url = f"http://127.0.0.1:{platform.router_port}/"
    seen: set[str] = set()

    def all_answered() -> bool:
        answer = answers(url, {"Host": f"{app}.localhost"})
        if answer is not None and answer.status_code == 200:
            seen.add(answer.json()["dyno"])
        return len(seen) == DYNOS

    wait(all_answered, interval=0.001)
    elapsed = time.perf_counter() - started
    platform.scale(app, web=0)
    wait(lambda: platform.dynos(app) == [], interval=0.2)
    return elapsed


def scale_directly(workdir: Path) -> float:
    """The floor: the same ten servers spawned here, each on its port, until each answers."""
    (workdir / "server.py").write_text(SERVER)
    ports = [free_loopback_port() for _ in range(DYNOS)]
    started = time.perf_counter()
    children = [subprocess.Popen([FLOOR_PYTHON, "server.py"], cwd=workdir, stdout=subprocess.DEVNULL,
                                 env={**os.environ, "PORT": str(port), "DYNO": f"web.{n + 1}"})
                for n, port in enumerate(ports)]
    try:
        for port in ports:
            wait(lambda port=port: answers(f"http://127.0.0.1:{port}/") is not None)
        return time.perf_counter() - started
    finally:
        for child in children:
            child.kill()
            child.wait()


class Load:
    """Steady requests on 4 threads; every request's latency and whether it failed."""

    def __init__(self, url: str, host: str) -> None:
        self.url, self.host = url, host
        self.latencies: list[float] = []
        self.failed = 0
        self.failures: list[str] = []
        self.resent = 0  # requests sent again on a new connection (see browser_like_session)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]

    def _run(self) -> None:
        session = browser_like_session()
        while not self._stop.is_set():
            began = time.perf_counter()
            why = ""
            try:
                answer = session.get(self.url, headers={"Host": self.host}, timeout=30)
                ok = answer.status_code == 200
                why = f"{answer.status_code} {answer.text[:80]!r}"
                retries = answer.raw.retries
                self.resent += len(retries.history) if retries is not None else 0
            except requests.RequestException as exc:
                ok, why = False, repr(exc)[:200]
            self.latencies.append(time.perf_counter() - began)
            if not ok:
                self.failed += 1
                self.failures.append(why)

    def run_for(self, seconds: float, during=None) -> "Load":
        for thread in self._threads:
            thread.start()
        began = time.monotonic()
        if during is not None:
            during()
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return self

    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000


def rolling_deploy(platform: RunPlatform, app: str, version: int) -> tuple[Load, Load, float]:
    """The same load without and with a deploy that replaces both web dynos; the deploy's seconds."""
    url, host = f"http://127.0.0.1:{platform.router_port}/", f"{app}.localhost"
    quiet = Load(url, host).run_for(8)
    timing: list[float] = []

    def deploy() -> None:
        began = time.perf_counter()
        release = platform.deploy(app, version=str(version))["version"]
        wait(lambda: [(row.release_version, row.state) for row in platform.dynos(app)] == [(release, "up")] * 2,
             interval=0.05)
        timing.append(time.perf_counter() - began)

    deploying = Load(url, host).run_for(8, deploy)
    return quiet, deploying, timing[0]


def print_table_head(rounds: int, load_before: float, note: str) -> None:
    """The run's conditions, then the head of its results table (floor, Berth, ratio, goal)."""
    print(f"\n{rounds} rounds, medians; {os.cpu_count()} cores, load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after; {note}\n")
    print("| measure | floor | Berth | ratio | goal |")
    print("| --- | ---: | ---: | ---: | --- |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10, help="each wrk run (default 10)")
    args = parser.parse_args()
    require_stack()
    if not wrk_version():
        raise SystemExit("wrk is needed: scripts/install-system-packages.sh --bench installs it")
    load_before = os.getloadavg()[0]
    scale: dict[str, list[float]] = {"berth": [], "floor": []}
    wrk: dict[str, list[Result]] = {"router": [], "direct": [], "headers": []}
    rolls = []
    with tempfile.TemporaryDirectory(prefix="berth-bench-run-") as tmp:
        base = Path(tmp)
        router_port = free_port()
        with build_platform(base / "berth", ROUTER_PORT=str(router_port), ROUTER_TLS_PORT=str(free_port())) as built:
            platform = RunPlatform(built, router_port)
            platform.start_runner()
            try:
                app = "bench-run"
                built.make_app(app)
                platform.deploy(app)
                platform.scale(app, web=0)
                wait(lambda: platform.dynos(app) == [], interval=0.2)
                for round_ in range(args.rounds):
                    scale["floor"].append(scale_directly(base))
                    scale["berth"].append(scale_through_berth(platform, app))
                    print(f"round {round_ + 1}: scale 0→{DYNOS} floor {scale['floor'][-1]:.2f} s, "
                          f"Berth {scale['berth'][-1]:.2f} s", file=sys.stderr)
                platform.scale(app, web=1)
                wait(lambda: [row.state for row in platform.dynos(app)] == ["up"], interval=0.2)
                wait(lambda: (answers(f"http://127.0.0.1:{router_port}/", {"Host": f"{app}.localhost"})
                              or requests.Response()).status_code == 200)
                address = platform.dynos(app)[0].address
                for round_ in range(args.rounds):
                    wrk["direct"].append(run_wrk("direct", f"http://{address}/", {}, args.seconds, 8))
                    wrk["router"].append(run_wrk("router", f"http://127.0.0.1:{router_port}/",
                                                 {"Host": f"{app}.localhost"}, args.seconds, 8))
                    wrk["headers"].append(run_wrk("headers", f"http://{address}/", ROUTER_HEADERS, args.seconds, 8))
                platform.scale(app, web=2)
                wait(lambda: [row.state for row in platform.dynos(app)] == ["up", "up"], interval=0.2)
                for round_ in range(args.rounds):
                    rolls.append(rolling_deploy(platform, app, round_ + 2))
            finally:
                platform.stop_runner()
                subprocess.run([sys.executable, "-m", "berth.runner", "stop-all"], cwd=ROOT, env=platform.env,
                               timeout=120, check=False)
    median = statistics.median
    print_table_head(args.rounds, load_before, wrk_version())
    floor_s, berth_s = median(scale["floor"]), median(scale["berth"])
    print(f"| scale 0 → {DYNOS} web dynos, all answering (s) | {floor_s:.2f} | {berth_s:.2f} | "
          f"{berth_s / floor_s:.2f}× | ≤ 1.5× |")
    direct_rps = median(r.requests_per_second for r in wrk["direct"])
    router_rps = median(r.requests_per_second for r in wrk["router"])
    direct_p99 = median(r.p99_ms for r in wrk["direct"])
    router_p99 = median(r.p99_ms for r in wrk["router"])
    errors = sum(r.errors for r in wrk["router"])
    print(f"| one dyno, req/s (wrk -c8, direct vs through nginx) | {direct_rps:.0f} | {router_rps:.0f} | "
          f"{router_rps / direct_rps:.2f}× | ≥ 0.85× |")
    print(f"| one dyno, p99 ms | {direct_p99:.2f} | {router_p99:.2f} | +{router_p99 - direct_p99:.2f} ms | "
          f"≤ +2 ms |")
    headers_rps = median(r.requests_per_second for r in wrk["headers"])
    headers_p99 = median(r.p99_ms for r in wrk["headers"])
    print(f"| one dyno, req/s (direct with the router's request headers vs through nginx) | {headers_rps:.0f} | "
          f"{router_rps:.0f} | {router_rps / headers_rps:.2f}× | — |")
    print(f"| one dyno, p99 ms (direct with the router's request headers vs through nginx) | {headers_p99:.2f} | "
          f"{router_p99:.2f} | +{router_p99 - headers_p99:.2f} ms | — |")
    quiet_p99 = median(quiet.p99_ms() for quiet, _, _ in rolls)
    deploy_p99 = median(deploying.p99_ms() for _, deploying, _ in rolls)
    failed = sum(deploying.failed for _, deploying, _ in rolls)
    requests_made = sum(len(deploying.latencies) for _, deploying, _ in rolls)
    print(f"| rolling deploy of 2 web dynos under load, p99 ms | {quiet_p99:.1f} | {deploy_p99:.1f} | "
          f"+{deploy_p99 - quiet_p99:.1f} ms | ≤ +100 ms |")
    resent = sum(deploying.resent for _, deploying, _ in rolls)
    print(f"| rolling deploy, failed requests | — | {failed} of {requests_made} | — | 0 |")
    print(f"| rolling deploy, requests sent again after a reload closed their kept-alive connection | — | "
          f"{resent} | — | — |")
    print(f"\nwrk errors through the router: {errors}; deploy took {median(t for _, _, t in rolls):.2f} s (median)")
    for _, deploying, _ in rolls:
        for why in deploying.failures[:5]:
            print(f"failed during a deploy: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
