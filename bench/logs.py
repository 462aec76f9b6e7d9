"""Log pipeline: a chatty dyno's lines to a `heroku logs --tail` client, against the floor.

A real LocalBackend dyno (the sandbox over the built stack) runs a small script from a test slug that
prints N lines as fast as it can, each with its send time (`<seq> <unix time>`). Its lines go

    keeper → output.log → follower → OutputForwarder → AppLog → log store → log session (tail=true)

and a tail client in its own process GETs the session's `logplex_url`, as `heroku logs --tail` does,
against a live Berth (gunicorn, as `make run` serves). The floor, in the same run and from the same
dyno: the lines read straight from the backend's follower. This process plays the runner (it holds the
backend and the forwarder).

For each path: lines/s (lines that arrived ÷ first send → last arrival), p50/p99 latency (send time →
arrival), lines missing. Goal: ≥ 20,000 lines/s and p99 < 250 ms at the tail client. Needs the stack
(scripts/build-stack.sh). Run from the repository root:

    .venv/bin/python bench/logs.py [--lines 100000] [--rounds 3] [--rate 20000] [--postgres]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from bench.api import machine, throwaway_postgres  # noqa: E402
from berth.db import Database  # noqa: E402
from berth.platform.dynos.backend import DynoSpec, OutputLine  # noqa: E402
from berth.platform.dynos.local import LocalBackend  # noqa: E402
from berth.platform.dynos.log_forwarding import OutputForwarder  # noqa: E402
from berth.platform.slug_store import LocalSlugStore  # noqa: E402
from berth.platform.slugs import pack  # noqa: E402
from berth.supervise.stack import require_stack  # noqa: E402
from tests.live_server import ACCEPT, live_server  # noqa: E402

GOAL_LINES_PER_S, GOAL_P99_MS = 20_000, 250.0
CHATTY = """\
import sys, time
out = sys.stdout
out.reconfigure(line_buffering=True)  # each line leaves when it is printed: its send time is true
now = time.time
lines, rate = int(sys.argv[1]), float(sys.argv[2])  # rate 0: as fast as it can
began = now()
for seq in range(lines):
    if rate and seq % 100 == 0 and (ahead := began + seq / rate - now()) > 0:
        time.sleep(ahead)
    out.write(f"{seq} {now():.6f}\\n")
"""


@dataclass
class PathResult:
    name: str
    expected: int
    arrivals: list[tuple[float, int, float]]  # (arrival time, seq, send time)

    @property
    def received(self) -> int:
        return len(self.arrivals)

    @property
    def lines_per_s(self) -> float:
        if not self.arrivals:
            return 0.0
        first_send = min(sent for _, _, sent in self.arrivals)
        return self.received / max(1e-9, self.arrivals[-1][0] - first_send)

    def latency_ms(self, quantile: float) -> float:
        latencies = sorted((arrived - sent) * 1000 for arrived, _, sent in self.arrivals)
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(quantile * len(latencies)))]

    def missing_ranges(self, most: int = 5) -> str:
        """The first gaps in the sequence, as `first-last` ranges: whole batches, or a skip."""
        seen = sorted({seq for _, seq, _ in self.arrivals})
        gaps, expected = [], 0
        for seq in seen + [self.expected]:
            if seq > expected:
                gaps.append(f"{expected}-{seq - 1}")
            expected = seq + 1
        return ", ".join(gaps[:most]) + (" …" if len(gaps) > most else "")

    @property
    def duplicates(self) -> int:
        return self.received - len({seq for _, seq, _ in self.arrivals})


def chatty_slug(store: LocalSlugStore, workdir: Path) -> str:
    app = workdir / "chatty-app"
    app.mkdir()
    (app / "chatty.py").write_text(CHATTY)
    packed = pack(app, workdir / "chatty.tgz")
    return store.put(packed.path, packed.checksum)


def parse_app_line(text: str) -> tuple[int, float] | None:
    try:
        seq, sent = text.split(" ")
        return int(seq), float(sent)
    except ValueError:
        return None


# ---------------------------------------------------------------- the tail client (its own process)

def tail_client(url: str, expected: int, timeout: float) -> None:
    """GET the logplex_url until the last line (or `timeout`); prints its arrivals as JSON."""
    arrivals: list[tuple[float, int, float]] = []
    others: list[str] = []
    deadline = time.monotonic() + timeout
    pending = b""
    with requests.get(url, stream=True, timeout=(10, 30)) as response:
        response.raise_for_status()
        print("ready", flush=True)
        for chunk in response.iter_content(chunk_size=None):
            arrived = time.time()
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                _, _, rest = raw.decode("utf-8", "replace").partition(" ")
                label, _, message = rest.partition(": ")
                parsed = parse_app_line(message) if label.startswith("app[") else None
                if parsed is None:
                    others.append(rest)
                    continue
                arrivals.append((arrived, *parsed))
            if (arrivals and arrivals[-1][1] == expected - 1) or time.monotonic() > deadline:
                break
    overtaken = sum(1 for other in others if "Error L11 (Tail buffer overflow)" in other)
    print(json.dumps({"arrivals": arrivals, "l11": overtaken}), flush=True)


def floor_client(data_dir: Path) -> None:
    """The floor, in its own process as the tail client is: the dyno's lines straight from the backend's
    follower, until the dyno ends; prints their arrivals as JSON."""
    arrivals: list[tuple[float, int, float]] = []

    def straight(line: OutputLine) -> None:
        if line.source == "app" and (parsed := parse_app_line(line.text)) is not None:
            arrivals.append((time.time(), *parsed))

    backend = LocalBackend(data_dir, LocalSlugStore(data_dir / "bench-slugs"), stack=require_stack())
    print("ready", flush=True)
    backend.follow(sys.stdin.readline().strip(), straight).wait(300)
    print(json.dumps({"arrivals": arrivals}), flush=True)


# ---------------------------------------------------------------- one round

@contextlib.contextmanager
def berth(base: Path, database_url: str | None) -> Iterator[tuple[object, str]]:
    settings = {"WEB_WORKERS": "2", "WEB_THREADS": "8"}
    if database_url:
        settings["DATABASE_URL"] = database_url
    with live_server(base, workers=2, threads=8, **settings) as server:
        yield server, server.env.get("BERTH_DATABASE_URL") or f"sqlite:///{base / 'data' / 'berth.sqlite3'}"


@dataclass
class Round:
    mode: str  # "burst" (as fast as it can) or "<rate>/s" (paced)
    floor: PathResult
    tail: PathResult
    dropped: int  # lines the forwarder's follower reported with L10
    l11: int  # L11 notices the tail client got (the buffer dropped lines it had not read)


def one_round(server, database: Database, backend: LocalBackend, data_dir: Path, checksum: str, key: str,
              lines: int, rate: float, tag: str) -> Round:
    headers = {"Authorization": f"Bearer {key}", "Accept": ACCEPT}
    app = requests.post(server.url + "/apps", headers=headers, json={"name": f"chatty-{tag}"}, timeout=30)
    app.raise_for_status()
    app_id = app.json()["id"]
    session = requests.post(f"{server.url}/apps/{app_id}/log-sessions", headers=headers,
                            json={"tail": True, "lines": 1, "source": "app"}, timeout=30)
    session.raise_for_status()
    client = subprocess.Popen([sys.executable, __file__, "--tail-client", session.json()["logplex_url"],
                               str(lines)], stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None and client.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # the stream is past its first read: tailing
    floor = subprocess.Popen([sys.executable, __file__, "--floor-client", str(data_dir)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert floor.stdin is not None and floor.stdout is not None and floor.stdout.readline().strip() == "ready"
    status = backend.start(DynoSpec(app_id=app_id, name="chatty.1", slug_checksum=checksum,
                                    command=f"exec python3 /app/chatty.py {lines} {rate}"))
    floor.stdin.write(status.id + "\n")
    floor.stdin.flush()
    forwarder = OutputForwarder(database, backend, status, data_dir=data_dir)
    began = time.time()
    forwarder.wait(300)
    print(f"  ({'burst' if not rate else 'paced'}: the forwarder had every line in the store "
          f"{time.time() - began:.2f} s after the dyno's start)", file=sys.stderr)
    out, _ = client.communicate(timeout=120)
    tail = json.loads(out.strip().splitlines()[-1])
    straight = json.loads(floor.communicate(timeout=120)[0].strip().splitlines()[-1])
    forwarder.close()
    backend.remove(status.id)
    return Round("burst" if not rate else f"{rate:,.0f}/s",
                 PathResult("floor: backend follower", lines, [tuple(a) for a in straight["arrivals"]]),
                 PathResult("Berth: tail client", lines, [tuple(a) for a in tail["arrivals"]]), forwarder.dropped,
                 tail["l11"])


def run(lines: int, rounds: int, rate: float, use_postgres: bool) -> int:
    require_stack()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(throwaway_postgres())[0] if use_postgres else None
        base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="berth-bench-logs-")))
        server, database_url = stack.enter_context(berth(base, url))
        key = server.create_user(f"bench-{os.getpid()}@example.com")
        database = Database(database_url)
        data_dir = base / "data"  # Berth's: the runner's dynos and the tails' wake-up sockets are there
        store = LocalSlugStore(data_dir / "bench-slugs")
        checksum = chatty_slug(store, base)
        backend = LocalBackend(data_dir, store, stack=require_stack())
        results = [one_round(server, database, backend, data_dir, checksum, key, lines, mode, f"{os.getpid()}-{n}-{i}")
                   for n in range(rounds) for i, mode in enumerate((0.0, rate))]
    report(results, lines, "PostgreSQL" if use_postgres else "SQLite")
    burst = [r.tail for r in results if r.mode == "burst"]
    paced = [r.tail for r in results if r.mode != "burst"]
    return 0 if (statistics.median(t.lines_per_s for t in burst) >= GOAL_LINES_PER_S and
                 statistics.median(t.latency_ms(0.99) for t in paced) < GOAL_P99_MS) else 1


def report(results: list[Round], lines: int, database: str) -> None:
    print(f"\nLog pipeline, {lines:,} lines per dyno, control-plane database {database}; burst: the dyno prints "
          f"as fast as it can (throughput), paced: at a fixed rate (latency)\n")
    print("| round | dyno | path | lines/s | p50 ms | p99 ms | missing | repeated | L10-dropped | L11 notices |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for number, result in enumerate(results):
        for path, l10, l11 in ((result.floor, "", ""), (result.tail, str(result.dropped), str(result.l11))):
            print(f"| {number // 2 + 1} | {result.mode} | {path.name} | {path.lines_per_s:,.0f} | "
                  f"{path.latency_ms(0.5):.1f} | {path.latency_ms(0.99):.1f} | "
                  f"{lines - path.received + path.duplicates} | {path.duplicates} | {l10} | {l11} |")
    for mode in sorted({r.mode for r in results}):
        tails = [r.tail for r in results if r.mode == mode]
        floors = [r.floor for r in results if r.mode == mode]
        print(f"\n{mode}, medians: tail client {statistics.median(t.lines_per_s for t in tails):,.0f} lines/s, "
              f"p99 {statistics.median(t.latency_ms(0.99) for t in tails):.1f} ms; floor "
              f"{statistics.median(f.lines_per_s for f in floors):,.0f} lines/s, "
              f"p99 {statistics.median(f.latency_ms(0.99) for f in floors):.1f} ms")
    for number, result in enumerate(results):
        if result.tail.received < lines:
            print(f"\nround {number // 2 + 1}, {result.mode}: lines missing at the tail client: "
                  f"{result.tail.missing_ranges()}")
    print(f"\ngoal: ≥ {GOAL_LINES_PER_S:,} lines/s (burst) and p99 < {GOAL_P99_MS:.0f} ms (paced) at the tail client")
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in machine().items() if k != "load generator"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=GOAL_LINES_PER_S, help="lines/s of the paced dyno")
    parser.add_argument("--postgres", action="store_true", help="the control plane on a throwaway PostgreSQL")
    parser.add_argument("--tail-client", nargs=2, metavar=("URL", "LINES"), help=argparse.SUPPRESS)
    parser.add_argument("--floor-client", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tail_client:
        tail_client(args.tail_client[0], int(args.tail_client[1]), timeout=120)
        return 0
    if args.floor_client:
        floor_client(Path(args.floor_client))
        return 0
    return run(args.lines, args.rounds, args.rate, args.postgres)


if __name__ == "__main__":
    sys.exit(main())
