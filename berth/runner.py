"""The runner process: keeps every app's formation running (berth.platform.runner) and hosts the
router (nginx), whose table it drives. `python -m berth.runner` runs it (`make run` starts one).

Dynos and nginx outlive it: a runner that stops or restarts leaves both running, and the next one
adopts them (no request fails meanwhile). `python -m berth.runner stop-all` stops every dyno and
the router: `make run` does so when it is stopped itself. A composition root like berth.builder.
"""
from __future__ import annotations

import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from berth.config import Settings
from berth.db import Database
from berth.platform.dynos.backend import DynoStatus
from berth.platform.dynos.local import LocalBackend
from berth.platform.dynos.log_forwarding import OutputForwarder
from berth.platform.router.service import RouterService, router_layout
from berth.platform.dynos.swarm import SwarmBackend, image_maker
from berth.platform.dynos.swarm_engines import NodeEngines
from berth.platform.runner.ownership import OwnershipError, ownership_for
from berth.platform.runner.service import Runner
from berth.platform.runner.swarm_runner import SwarmRunner
from berth.platform.slug_store import slug_store_of
from berth.process import start_process

log = logging.getLogger("berth.runner")


def make_runner(database: Database, settings: Settings, *,
                require_memory_limit: bool = False) -> Runner | SwarmRunner:
    """Without a memory cgroup (a kernel that does not let Berth write one) the keeper samples RSS."""
    if settings.runner == "swarm":
        return make_swarm_runner(database, settings)
    backend = LocalBackend(settings.data_dir, slug_store_of(settings), require_memory_limit=require_memory_limit)

    def forward(status: DynoStatus) -> OutputForwarder:  # every dyno's output into its app's log stream
        return OutputForwarder(database, backend, status, data_dir=settings.data_dir)

    runner = Runner(database, settings, backend, forward=forward, crash_base=settings.crash_cool_off_seconds,
                    boot_timeout=settings.dyno_boot_timeout_seconds, ownership=ownership_for(database, settings))
    runner.router = RouterService(settings, database, router_layout(settings, settings.host), runner.dynos_of)
    return runner


def make_swarm_runner(database: Database, settings: Settings) -> SwarmRunner:
    backend = SwarmBackend(settings.docker_host)
    images = image_maker(settings.docker_host, settings.registry, slug_store_of(settings))
    engines = NodeEngines(dict(settings.swarm_node_engines), settings.swarm_engine_tls_dir)
    runner = SwarmRunner(database, settings, backend, images, boot_timeout=settings.dyno_boot_timeout_seconds,
                         ownership=ownership_for(database, settings), engines=engines)
    runner.router = RouterService(settings, database, router_layout(settings, settings.host), runner.dynos_of)
    return runner


def stop_all(database: Database, settings: Settings) -> None:
    """Every dyno stopped (all at once, each with its grace) and the router. On a swarm, dynos are
    the swarm's and outlive Berth's processes: only the router stops."""
    if settings.runner == "swarm":
        RouterService(settings, database, router_layout(settings, settings.host)).router.stop()
        return
    backend = LocalBackend(settings.data_dir, slug_store_of(settings))
    live = [status for status in backend.list() if status.state in ("starting", "up")]
    with ThreadPoolExecutor(max(1, min(16, len(live)))) as pool:
        list(pool.map(lambda status: backend.stop(status.id), live))
    RouterService(settings, database, router_layout(settings, settings.host)).router.stop()


def main(argv: list[str]) -> int:
    settings, database, stop = start_process()
    if argv[1:] == ["stop-all"]:
        stop_all(database, settings)
        return 0
    if argv[1:]:
        print("usage: python -m berth.runner [stop-all]", file=sys.stderr)
        return 2
    runner = make_runner(database, settings)
    try:
        runner.ownership.refresh()  # a node whose shard count disagrees with the others' stops here
    except OwnershipError as error:
        raise SystemExit(f"berth: {error}") from None
    router = runner.router
    assert isinstance(router, RouterService)
    if isinstance(runner, SwarmRunner):
        runner.backend.tune_failure_detection()
    threading.Thread(target=router.ship_forever, args=(stop,), name="router-lines", daemon=True).start()
    log.info("runner started; router on %s:%d", settings.host, settings.router_port)
    runner.serve(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
