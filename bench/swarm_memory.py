"""What the Swarm runner's memory watch (R14/R15, berth/platform/dynos/swarm_memory.py) costs a round:
N running containers spread over the two machines of a test swarm (tests/cluster/), each read once
a round through its machine's own engine, as the runner does (one stats sample, no stream, up to
swarm_memory.THREADS at once). Shown beside it: the same reads one after the other, and one read
without `one-shot` (two collection cycles). Needs root and the harness's tools (`make setup`).
Run from the repository root on a quiet machine:

    .venv/bin/python bench/swarm_memory.py [--containers 20] [--rounds 5]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from berth.platform.dynos.swarm_engines import NodeEngines  # noqa: E402
from berth.platform.dynos.swarm_memory import MemoryWatch, Watched  # noqa: E402
from tests.cluster.machines import push_busybox_image, start_cluster  # noqa: E402

GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with start_cluster(2) as cluster:
        image = push_busybox_image(cluster)
        engines = NodeEngines({machine.name: machine.base_url for machine in cluster.machines})
        watched = []
        for index in range(args.containers):
            machine = cluster.machines[index % len(cluster.machines)]
            with contextlib.closing(machine.client()) as client:
                container = client.containers.run(image, ["sleep", "600"], detach=True, mem_limit="64m",
                                                  labels={"berth.bench": "1"})
            watched.append(Watched(f"t{index}", "app", f"web.{index + 1}", machine.name, container.id, GIB, 2 * GIB))
        watch = MemoryWatch(engines)
        watch.round(watched)  # connections made
        parallel = []
        cpu_began = time.process_time()
        for _ in range(args.rounds):
            watch.round(watched)
            parallel.append(watch.last_round_seconds)
        cpu = (time.process_time() - cpu_began) / args.rounds
        began = time.monotonic()
        for task in watched:
            engines.memory(task.node, task.container)
        one_by_one = time.monotonic() - began
        began = time.monotonic()
        engines.call(watched[0].node, "stats", watched[0].container, stream=False)
        without_one_shot = time.monotonic() - began
        watch.close()
        engines.close()
    print(f"{args.containers} containers on 2 machines: a memory round takes {statistics.median(parallel):.2f} s "
          f"(median of {args.rounds}; max {max(parallel):.2f} s) in parallel, using {cpu * 1000:.0f} ms of the "
          f"runner's CPU; {one_by_one:.2f} s one by one "
          f"({one_by_one / args.containers:.2f} s a read); one read without one-shot {without_one_shot:.2f} s")


if __name__ == "__main__":
    main()
