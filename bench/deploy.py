"""Deploy time: `git push` → release current, for the sample Flask app, against the floor.

Starts a live Berth and its builder (the helpers in `tests/`, as the build tests do: gunicorn, the
builder process, the real sandbox over the built stack), then per round, in the same run:

- floor cold: the same `pip install -r requirements.txt` into a fresh virtualenv, with an empty
  pip cache, plus `tar czf` of the directory (what a slug is: the app and its virtualenv);
- floor warm: the same with the pip cache a previous install filled;
- Berth cold: `git push` of the app to a new app (empty build cache) until git returns, which is
  after the release was cut ("Verifying deploy... done."); the release is then checked current;
- Berth warm: a new commit pushed to the same app (its build cache filled by the cold push).

Berth's own overhead is measured from the push's `remote:` lines, each timed as it reaches the
client: everything but the buildpack's compile, i.e. total − (first "app detected" → "Discovering
process types"). That leaves receive (git's pack, the hook, the source handed to the builder, the
build claimed: up to "Building on the"), prepare (source fetched and unpacked, the sandbox started,
bin/detect: up to "app detected"), slug pack ("Compressing..." → "Done:", the tar czf the floor
pays too), slug store + release (Procfile, checksum, store, the release cut: the rest of
"Discovering" → "Released") and finish (the final status reaching the hook, the ref update: "Released" → git exits). Each
line reaches the client within milliseconds of being written (the builder wakes the output's
followers per line), so the stages are timed to a few milliseconds.

Goal: warm push ≤ 1.5× the warm floor, and overhead < 1 s. Needs the stack
(scripts/build-stack.sh) and network (PyPI). Run from the repository root:

    .venv/bin/python bench/deploy.py --rounds 5 [--check]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from berth.supervise.stack import require_stack  # noqa: E402
from tests.builds.conftest import APPS, BuildPlatform, build_platform  # noqa: E402
from tests.git.test_git_http import git, git_env, head, remote  # noqa: E402

GOAL_RATIO, GOAL_OVERHEAD_S = 1.5, 1.0
SAMPLE = APPS / "flask"
# The remote: lines that bound the stages, in the order they come.
MARKS = {"received": "Berth received", "building": "-----> Building on the", "detected": " app detected",
         "compiled": "-----> Discovering process types", "compressing": "-----> Compressing...",
         "packed": "       Done: ", "released": "Released v"}


@dataclass
class Push:
    total: float
    marks: dict[str, float] = field(default_factory=dict)  # seconds from the push's start

    @property
    def compile(self) -> float:
        return self.marks["compiled"] - self.marks["detected"]

    @property
    def overhead(self) -> float:
        return self.total - self.compile

    @property
    def pack(self) -> float:
        return self.marks["packed"] - self.marks["compressing"]

    def stages(self) -> dict[str, float]:
        m = self.marks
        return {"receive": m["building"], "prepare": m["detected"] - m["building"], "compile": self.compile,
                "slug pack": self.pack, "slug store + release": m["released"] - m["compiled"] - self.pack,
                "finish": self.total - m["released"]}


def timed_push(source: Path, env: dict[str, str], url: str) -> Push:
    """`git push url main`, each stderr line timed as it arrives."""
    started = time.perf_counter()
    process = subprocess.Popen(["git", "push", url, "main"], cwd=source, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    assert process.stderr is not None
    marks: dict[str, float] = {}
    lines = []
    for raw in process.stderr:
        now = time.perf_counter() - started
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        for name, text in MARKS.items():
            if name not in marks and line.startswith("remote:") and text in line:
                marks[name] = now
    process.wait(timeout=600)
    total = time.perf_counter() - started
    if process.returncode != 0 or set(marks) != set(MARKS):
        raise SystemExit("the push failed or said less than expected:\n" + "\n".join(lines))
    return Push(total, marks)


def floor(workdir: Path, pip_cache: Path) -> float:
    """The same pip install into a fresh virtualenv, plus a tar of the directory: seconds."""
    app = workdir / "app"
    shutil.rmtree(app, ignore_errors=True)
    shutil.copytree(SAMPLE, app)
    env = {**os.environ, "PIP_CACHE_DIR": str(pip_cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_NO_INPUT": "1", "PIP_PROGRESS_BAR": "off"}
    started = time.perf_counter()
    venv = app / ".heroku" / "python"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, env=env)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-warn-script-location", "-r",
                    str(app / "requirements.txt")], check=True, env=env)
    subprocess.run(["tar", "czf", str(workdir / "slug.tgz"), "-C", str(workdir), "app"], check=True)
    return time.perf_counter() - started


def commit(source: Path, env: dict[str, str], round_: int, kind: str) -> None:
    (source / "DEPLOYED").write_text(f"round {round_}, {kind}\n")  # a new commit: a new build
    git(source, env, "add", "-A")
    git(source, env, "commit", "-q", "-m", f"round {round_} {kind}")


def run(rounds: int) -> dict[str, list]:
    require_stack()
    results: dict[str, list] = {"floor cold": [], "floor warm": [], "berth cold": [], "berth warm": []}
    with tempfile.TemporaryDirectory(prefix="berth-bench-deploy-") as tmp:
        base = Path(tmp)
        with build_platform(base / "berth") as platform:
            env = git_env(platform.server, base / "home")
            warm_cache = base / "pip-warm"
            floor(base / "floor-warmup", warm_cache)  # fills the warm floor's cache
            for round_ in range(rounds):
                results["floor cold"].append(floor(base / "floor", base / f"pip-cold-{round_}"))
                results["floor warm"].append(floor(base / "floor", warm_cache))
                cold, warm = deploy_twice(platform, env, base / f"src-{round_}", round_)
                results["berth cold"].append(cold)
                results["berth warm"].append(warm)
                print(f"round {round_ + 1}/{rounds}: floor {results['floor cold'][-1]:.2f}/"
                      f"{results['floor warm'][-1]:.2f} s, Berth {cold.total:.2f}/{warm.total:.2f} s "
                      f"(cold/warm)", file=sys.stderr)
    return results


def deploy_twice(platform: BuildPlatform, env: dict[str, str], source: Path, round_: int) -> tuple[Push, Push]:
    """A new app pushed once (cold build cache), then a new commit of it (warm)."""
    app = f"bench-deploy-{round_}"
    platform.make_app(app)
    shutil.copytree(SAMPLE, source)
    git(source, env, "init", "-q", "-b", "main")
    url = remote(platform.server.url, platform.key, app)
    pushes = []
    for kind in ("cold", "warm"):
        commit(source, env, round_, kind)
        pushes.append(timed_push(source, env, url))
        current = platform.releases(app)[-1]
        assert current["description"] == f"Deploy {head(source, env)[:7]}", current  # the push is live
    return pushes[0], pushes[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the four measures (default 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--json", type=Path, help="also write every round's figures to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = run(args.rounds)
    median = statistics.median
    floor_python = subprocess.run(["python3", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{args.rounds} rounds, medians; sample app tests/fixtures/apps/flask; {os.cpu_count()} cores, "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; floor: host {floor_python}, "
          "Berth: the stack's python3\n")
    print("| deploy | cold s | warm s |")
    print("| --- | ---: | ---: |")
    print(f"| floor: pip install into a fresh venv + tar czf | {median(results['floor cold']):.2f} | "
          f"{median(results['floor warm']):.2f} |")
    print(f"| Berth: git push → release current | {median(p.total for p in results['berth cold']):.2f} | "
          f"{median(p.total for p in results['berth warm']):.2f} |")
    print("\n| Berth stage (median s) | cold | warm |")
    print("| --- | ---: | ---: |")
    rows = {stage: (lambda push, stage=stage: push.stages()[stage]) for stage in results["berth warm"][0].stages()}
    rows["overhead: all but compile"] = lambda push: push.overhead
    rows["overhead beyond the floor's work: all but compile and slug pack"] = lambda push: push.overhead - push.pack
    for stage, measure in rows.items():
        cold, warm = (median(measure(p) for p in results[f"berth {kind}"]) for kind in ("cold", "warm"))
        print(f"| {stage} | {cold:.2f} | {warm:.2f} |")
    ratio = median(p.total for p in results["berth warm"]) / median(results["floor warm"])
    overhead = median(p.overhead for p in results["berth warm"])
    beyond = median(p.overhead - p.pack for p in results["berth warm"])
    met = ratio <= GOAL_RATIO and overhead < GOAL_OVERHEAD_S
    print(f"\nwarm push {ratio:.2f}× the warm floor (goal ≤ {GOAL_RATIO}×); Berth's overhead {overhead:.2f} s, "
          f"{beyond:.2f} s of it beyond the floor's own tar czf (goal < {GOAL_OVERHEAD_S:.0f} s): "
          f"{'MET' if met else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({
            "rounds": args.rounds, "cores": os.cpu_count(), "floor_python": floor_python,
            "floor": {kind: results[f"floor {kind}"] for kind in ("cold", "warm")},
            "berth": {kind: [{"total": p.total, **p.stages()} for p in results[f"berth {kind}"]]
                      for kind in ("cold", "warm")},
            "warm_ratio": ratio, "overhead": overhead, "overhead_beyond_floor": beyond}, indent=2) + "\n")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
