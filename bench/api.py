"""Throughput and latency of GET /apps/{app}/config-vars next to a bare Flask route.

    .venv/bin/python bench/api.py [--seconds 10] [--connections 8] [--rounds 3]
                                  [--database-url URL | --postgres] [--quiet-wait SECONDS]
                                  [--check]

Starts gunicorn (2 sync workers) on `bench.wsgi:app` over a fresh temporary data dir, creates a
user (`python -m berth.admin create-user`, a real API key) and an app with 10 config vars
(encrypted at rest) through the API, checks that both routes answer what they should, then loads
them alternately in the same run: a warm-up of each, then bare, config, bare, config, ...
(`--rounds` of each). The median round of each route (by requests/s; the lower middle one for
an even count) is reported, with the ratio config/bare; the goal is >= 0.5. `--postgres` puts
the control plane on a throwaway local PostgreSQL cluster (`LocalPostgres`, removed at the end)
instead of SQLite.

Per round it also prints the CPU time gunicorn's workers spent per request, with --postgres the
cluster's CPU time per request, and the share of the machine's CPU used by other processes
("other load": someone else's tests, or the PostgreSQL server when --database-url points at
one), all from psutil. The machine may be shared:
--quiet-wait waits before each round until other processes use < 15% of the CPUs.

The load generator is `wrk` (scripts/install-system-packages.sh --bench installs it). Without
wrk a Python generator (threads + requests.Session) is used instead: it competes with gunicorn
for the CPU and saturates well before the bare route does, so it overstates the ratio; --check
refuses to run with it.

Exits 1 if a round saw non-2xx answers or socket errors (its figures would be meaningless), and,
with --check, 1 if the ratio is below --goal. gunicorn and the data dir are removed at the end,
also on errors, Ctrl-C and SIGTERM.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from berth.addons.postgres.cluster import LocalPostgres  # noqa: E402

try:
    import psutil
except ImportError:  # only for the server CPU and other load columns
    psutil = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parent.parent
BARE_PATH = "/bench/bare"
CONFIG_VARS = {f"BENCH_VAR_{i:02d}": f"value-{i:02d}-" + "x" * 24 for i in range(10)}
ACCEPT = "application/vnd.heroku+json; version=3"
QUIET_PCT = 15.0


class BenchError(RuntimeError):
    pass


@dataclass
class Result:
    route: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int = 0
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    server_cpu_ms: float | None = None  # gunicorn workers' CPU time per request
    database_cpu_ms: float | None = None  # the --postgres cluster's CPU time per request
    other_cpu_pct: float | None = None  # CPU used by other processes, % of all cores

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


# ---------------------------------------------------------------- machine description

def busy_cpu_seconds() -> float | None:
    """CPU time spent by the whole machine, all cores, since boot (None without psutil)."""
    if psutil is None:
        return None
    times = psutil.cpu_times()
    # guest time is already counted in user time on Linux.
    return sum(times) - times.idle - sum(getattr(times, name, 0.0) for name in
                                         ("iowait", "guest", "guest_nice"))


def own_cpu_seconds() -> float:
    """This process and its waited-for children (wrk) so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def wait_for_quiet(server: Server, limit_seconds: float,
                   threshold_pct: float = QUIET_PCT) -> float | None:
    """Wait (at most limit_seconds) until other processes use < threshold_pct of the CPUs over 1 s.
    Returns the last measured other load in %, or None when it cannot be measured."""
    deadline = time.monotonic() + limit_seconds
    while True:
        busy_before, server_before = busy_cpu_seconds(), server.cpu_seconds()
        own_before, began = own_cpu_seconds(), time.monotonic()
        time.sleep(1.0)
        busy_after, server_after, own_after = (busy_cpu_seconds(), server.cpu_seconds(),
                                               own_cpu_seconds())
        if None in (busy_before, busy_after, server_before, server_after):
            return None
        other = (busy_after - busy_before) - (server_after - server_before) - (own_after - own_before)
        load = max(0.0, other) / ((time.monotonic() - began) * (os.cpu_count() or 1)) * 100
        if load < threshold_pct or time.monotonic() >= deadline:
            return load


def machine() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() not in fields:
                fields[name.strip()] = value.strip()
    except OSError:
        pass
    cpu = fields.get("model name", "unknown")
    details = [f"{key} {fields[key]}" for key in ("cpu family", "model") if key in fields]
    if "cpu MHz" in fields:
        details.append(f"{float(fields['cpu MHz']):.0f} MHz")
    if "hypervisor" in fields.get("flags", "").split():
        details.append("virtual machine")
    if details:
        cpu += f" ({', '.join(details)})"
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        import gunicorn
        gunicorn_version = gunicorn.__version__
    except ImportError:
        gunicorn_version = "not installed"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "gunicorn": gunicorn_version,
        "load generator": wrk_version() or "python (threads + requests.Session)",
    }


def wrk_version() -> str | None:
    wrk = shutil.which("wrk")
    if not wrk:
        return None
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


# ---------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn on bench.wsgi:app over its own data dir; stop() is idempotent."""

    def __init__(self, data_dir: Path, database_url: str | None, workers: int = 2,
                 wsgi_app: str = "bench.wsgi:app") -> None:
        self.workers, self.wsgi_app = workers, wsgi_app
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, BERTH_DATA_DIR=str(data_dir), BERTH_PORT=str(self.port),
                        BERTH_HOST="127.0.0.1", BERTH_RATE_LIMIT_PER_HOUR="100000000")
        if database_url:
            self.env["BERTH_DATABASE_URL"] = database_url
        self.log_path = data_dir / "gunicorn.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.database_pid: int | None = None  # the postmaster of a --postgres cluster

    def create_user(self, email: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "berth.admin", "create-user", email, "--password", "x-123456789"],
            cwd=REPO, env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise BenchError(f"create-user failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-k", "sync",
                   "-b", f"127.0.0.1:{self.port}", self.wsgi_app]
        log = open(self.log_path, "wb")
        # Own session: a Ctrl-C in the terminal reaches us only, and we stop gunicorn cleanly.
        self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.base + BARE_PATH, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise BenchError(f"gunicorn did not answer within 60 s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time used so far by gunicorn's workers (None without psutil)."""
        if psutil is None or self.process is None:
            return None
        try:
            workers = psutil.Process(self.process.pid).children()
            return sum(t.user + t.system for t in (w.cpu_times() for w in workers))
        except psutil.Error:
            return None

    def database_cpu_seconds(self) -> float | None:
        """CPU time used so far by the --postgres cluster: the postmaster, the backends it has
        reaped, and the live ones (None without one, or without psutil)."""
        if psutil is None or self.database_pid is None:
            return None
        try:
            postmaster = psutil.Process(self.database_pid)
            own = postmaster.cpu_times()
            live = sum(t.user + t.system for t in (c.cpu_times() for c in postmaster.children()))
            return own.user + own.system + own.children_user + own.children_system + live
        except psutil.Error:
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only gunicorn's processes
            process.wait()


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[tuple[str, int]]:
    """A local PostgreSQL cluster in its own temp dir, stopped and removed on exit: its URL
    and its postmaster's pid."""
    base = Path(tempfile.mkdtemp(prefix="berth-bench-pg-"))
    # When we are root the server runs as its own service account, which must pass through.
    base.chmod(0o711)
    server = LocalPostgres(base / "cluster")
    try:
        server.start()
        url = server.create_database("bench").replace("postgresql://", "postgresql+psycopg://", 1)
        yield url, int((server.data_dir / "postmaster.pid").read_text().split()[0])
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- fixture through the API

def prepare(server: Server) -> tuple[str, str]:
    """Returns (API key, config-vars path) after creating the app and checking both routes."""
    tag = os.urandom(4).hex()
    key = server.create_user(f"bench-{tag}@example.com")
    http = requests.Session()
    http.headers.update({"Authorization": f"Bearer {key}", "Accept": ACCEPT})
    created = http.post(server.base + "/apps", json={"name": f"bench-{tag}"}, timeout=30)
    if created.status_code != 201:
        raise BenchError(f"POST /apps answered {created.status_code}: {created.text[:300]}")
    app_name = created.json()["name"]
    path = f"/apps/{app_name}/config-vars"
    patched = http.patch(server.base + path, json=CONFIG_VARS, timeout=30)
    if patched.status_code != 200:
        raise BenchError(f"PATCH {path} answered {patched.status_code}: {patched.text[:300]}")
    # Guard against benchmarking error pages: both routes must answer what they should.
    for _ in range(4):  # several times, so both workers are likely to be asked
        got = http.get(server.base + path, timeout=30)
        if got.status_code != 200 or got.json() != CONFIG_VARS:
            raise BenchError(f"GET {path} answered {got.status_code}: {got.text[:300]}")
        bare = requests.get(server.base + BARE_PATH, timeout=30)
        if bare.status_code != 200 or bare.json() != {"status": "ok"}:
            raise BenchError(f"GET {BARE_PATH} answered {bare.status_code}: {bare.text[:300]}")
    return key, path


# ---------------------------------------------------------------- load generators

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise BenchError(f"cannot parse wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(route: str, output: str) -> Result:
    def need(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise BenchError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match

    result = Result(
        route=route,
        requests_per_second=float(need(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_duration_ms(need(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_duration_ms(need(r"^\s+99%\s+(\S+)").group(1)),
        requests=int(need(r"^\s+(\d+) requests in").group(1)),
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result.non_2xx = int(non_2xx.group(1)) if non_2xx else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sockets:
        result.socket_errors = {k: int(v) for k, v in
                                zip(("connect", "read", "write", "timeout"), sockets.groups()) if int(v)}
    return result


def run_wrk(route: str, url: str, headers: dict[str, str], seconds: float, connections: int) -> Result:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
    return parse_wrk(route, out.stdout)


def run_python(route: str, url: str, headers: dict[str, str], seconds: float,
               connections: int) -> Result:
    """Fallback: one thread per connection. The threads share one GIL and compete with gunicorn
    for the cores, so fast routes are capped by the generator: indicative figures only."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        http = requests.Session()
        http.headers.update(headers)
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                status = http.get(url, timeout=10).status_code
            except requests.RequestException:
                status = 0
            latencies[index].append((time.perf_counter() - start) * 1000)
            if not 200 <= status < 300:
                failures[index] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    samples = sorted(s for per_thread in latencies for s in per_thread)
    if not samples:
        raise BenchError(f"no request to {url} completed")

    def percentile(p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]

    return Result(route=route, requests_per_second=len(samples) / elapsed, p50_ms=percentile(50),
                  p99_ms=percentile(99), requests=len(samples), non_2xx=sum(failures))


# ---------------------------------------------------------------- main

def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt()


def _ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:3.0f}%"


def median_round(results: list[Result]) -> Result:
    ordered = sorted(results, key=lambda r: r.requests_per_second)
    return ordered[(len(ordered) - 1) // 2]  # the lower middle one for an even count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of each timed round")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each route")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per route")
    database = parser.add_mutually_exclusive_group()
    database.add_argument("--database-url", help="BERTH_DATABASE_URL (default: SQLite in the temp dir)")
    database.add_argument("--postgres", action="store_true",
                          help="the control plane on a throwaway local PostgreSQL cluster")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (the goal: 2)")
    parser.add_argument("--app", default="bench.wsgi:app",
                        help="WSGI app for gunicorn, for experiments; it must serve /bench/bare")
    parser.add_argument("--quiet-wait", type=float, default=0, metavar="SECONDS",
                        help="before each round, wait up to this long for other processes to use "
                             "< 15%% of the CPUs (the machine may be shared); 0: do not wait")
    parser.add_argument("--python-load", action="store_true",
                        help="use the Python load generator even if wrk is installed")
    parser.add_argument("--check", action="store_true", help="exit 1 if config/bare < --goal")
    parser.add_argument("--goal", type=float, default=0.5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    use_wrk = bool(shutil.which("wrk")) and not args.python_load
    load: Callable[..., Result] = run_wrk if use_wrk else run_python
    if not use_wrk:
        if args.check:
            print("error: --check needs wrk (scripts/install-system-packages.sh --bench): the Python "
                  "load generator saturates before the bare route does, so its ratio would pass "
                  "falsely", file=sys.stderr)
            return 2
        print("warning: wrk not found (or --python-load): using the Python load generator, which "
              "competes with gunicorn for the CPU and saturates first; figures are indicative only",
              file=sys.stderr)

    info = machine()
    if not use_wrk:
        info["load generator"] = "python (threads + requests.Session)"
    for name, value in info.items():
        print(f"{name:>15}: {value}")
    shown = [re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", arg) for arg in sys.argv]  # no passwords
    print(f"{'command':>15}: {' '.join([Path(sys.executable).name] + shown)}")

    data_dir = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    # Ctrl-C and SIGTERM both end in the cleanup below (SIGINT may arrive ignored from a
    # non-interactive parent shell: take it back).
    previous_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    cleanup = contextlib.ExitStack()
    server = Server(data_dir, args.database_url, args.workers, args.app)
    try:
        if args.postgres:
            server.env["BERTH_DATABASE_URL"], server.database_pid = cleanup.enter_context(
                throwaway_postgres())
            print(f"{'control plane':>15}: PostgreSQL (throwaway local cluster)")
        server.start()
        key, config_path = prepare(server)
        routes = {
            "bare": (server.base + BARE_PATH, {"Accept": ACCEPT}),
            "config-vars": (server.base + config_path,
                            {"Accept": ACCEPT, "Authorization": f"Bearer {key}"}),
        }
        print(f"\ngunicorn -w {args.workers} (sync) {args.app} on {server.base}; "
              f"{args.connections} connections, {args.rounds} x {args.seconds:g} s per route, "
              "alternating")
        for name, (url, headers) in routes.items():
            warm = load(name, url, headers, args.warmup, args.connections)
            if warm.errors:
                raise BenchError(f"warm-up of {name}: {warm.non_2xx} non-2xx, "
                                 f"socket errors {warm.socket_errors}")
        results: dict[str, list[Result]] = {name: [] for name in routes}
        for round_number in range(1, args.rounds + 1):
            for name, (url, headers) in routes.items():
                if args.quiet_wait > 0:
                    load_now = wait_for_quiet(server, args.quiet_wait)
                    if load_now is not None and load_now >= QUIET_PCT:
                        print(f"  (machine still {load_now:.0f}% busy with other work after "
                              f"{args.quiet_wait:g} s; going on)")
                cpu_before, busy_before, own_before = (server.cpu_seconds(), busy_cpu_seconds(),
                                                       own_cpu_seconds())
                database_before = server.database_cpu_seconds()
                began = time.monotonic()
                result = load(name, url, headers, args.seconds, args.connections)
                elapsed = time.monotonic() - began
                cpu_after, busy_after, own_after = (server.cpu_seconds(), busy_cpu_seconds(),
                                                    own_cpu_seconds())
                database_after = server.database_cpu_seconds()
                database = (database_after - database_before
                            if database_before is not None and database_after is not None else 0.0)
                if database_before is not None and database_after is not None and result.requests:
                    result.database_cpu_ms = database * 1000 / result.requests
                if cpu_before is not None and cpu_after is not None and result.requests:
                    result.server_cpu_ms = (cpu_after - cpu_before) * 1000 / result.requests
                    if busy_before is not None and busy_after is not None:
                        # Whatever the machine did besides gunicorn's workers, wrk, us and our cluster.
                        other = ((busy_after - busy_before) - (cpu_after - cpu_before)
                                 - (own_after - own_before) - database)
                        result.other_cpu_pct = (max(0.0, other) * 100
                                                / (elapsed * (os.cpu_count() or 1)))
                results[name].append(result)
                sockets = f", socket errors {result.socket_errors}" if result.socket_errors else ""
                print(f"  round {round_number} {name:<12} {result.requests_per_second:9.1f} req/s  "
                      f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                      f"server CPU {_ms(result.server_cpu_ms)} ms/req  "
                      + (f"PostgreSQL CPU {_ms(result.database_cpu_ms)} ms/req  "
                         if result.database_cpu_ms is not None else "") +
                      f"other load {_pct(result.other_cpu_pct)}  "
                      f"({result.requests} requests, {result.non_2xx} non-2xx{sockets})")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        cleanup.close()
        signal.signal(signal.SIGTERM, previous_sigterm)
        signal.signal(signal.SIGINT, previous_sigint)
        shutil.rmtree(data_dir, ignore_errors=True)

    medians = {name: median_round(rounds) for name, rounds in results.items()}
    bare, config = medians["bare"], medians["config-vars"]
    ratio = config.requests_per_second / bare.requests_per_second
    paired = [c.requests_per_second / b.requests_per_second
              for b, c in zip(results["bare"], results["config-vars"])]
    print("\nmedian round of each route:\n")
    with_database = config.database_cpu_ms is not None
    print("| route | req/s | p50 ms | p99 ms | server CPU ms/req |"
          + (" PostgreSQL CPU ms/req |" if with_database else ""))
    print("| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if with_database else ""))
    for result in (bare, config):
        path = BARE_PATH if result is bare else "/apps/{app}/config-vars"
        print(f"| `GET {path}` | {result.requests_per_second:.1f} | {result.p50_ms:.2f} "
              f"| {result.p99_ms:.2f} | {_ms(result.server_cpu_ms).strip()} |"
              + (f" {_ms(result.database_cpu_ms).strip()} |" if with_database else ""))
    verdict = "meets" if ratio >= args.goal else "BELOW"
    print(f"\nratio config-vars / bare = {ratio:.3f} ({verdict} the >= {args.goal:g}x goal); "
          f"per round: {', '.join(f'{r:.3f}' for r in paired)}")
    if not use_wrk:
        print("note: Python load generator: the bare route's figure is capped by the generator "
              "itself, so this ratio overstates the config-vars route", file=sys.stderr)

    failed = [r for rounds in results.values() for r in rounds if r.errors]
    if args.json:
        args.json.write_text(json.dumps({
            "machine": info, "seconds": args.seconds, "connections": args.connections,
            "rounds": {name: [vars(r) for r in rounds] for name, rounds in results.items()},
            "ratio": ratio, "paired_ratios": paired}, indent=2) + "\n")
    if failed:
        print(f"error: {len(failed)} round(s) saw non-2xx answers or socket errors", file=sys.stderr)
        return 1
    if args.check and ratio < args.goal:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
