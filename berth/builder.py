"""The builder process: builds and release phases, in a `berth.jobs.worker.Worker` of their own, so
a build or release command that runs for minutes never delays provisioning (DESIGN.md). Both run
tenant code in the sandbox over the stack, which only this process needs. It also listens for git pushes (the pre-receive
hook hands each push over a Unix socket and relays the build's output back as `remote:` lines).

`python -m berth.builder` runs it (`make run` starts one). A composition root like berth.worker.
"""
from __future__ import annotations

import dataclasses
import logging
import threading

from berth import wire_hooks
from berth.config import Settings
from berth.db import Database
from berth.jobs.worker import Worker
from berth.outbound import TargetPolicy
from berth.platform.buildpack_runner import BuildpackRunner, configured_runner
from berth.platform.builds.job import BuildJobs
from berth.platform.builds.pushes import PushListener
from berth.platform.release_phase.job import ReleasePhaseJobs
from berth.platform.runner.nudges import register_runner_nudges
from berth.platform.slug_store import slug_store_of
from berth.process import start_process

log = logging.getLogger("berth.builder")


def make_builder(database: Database, settings: Settings) -> tuple[Worker, BuildJobs]:
    def runner() -> BuildpackRunner:
        return configured_runner(settings.data_dir, TargetPolicy.from_settings(settings),
                                 timeout=settings.build_timeout_seconds)

    store = slug_store_of(settings)
    builds = BuildJobs(database, settings, runner, store, timeout_seconds=settings.build_timeout_seconds)
    release_phases = ReleasePhaseJobs(database, settings, store, timeout_seconds=settings.release_phase_timeout_seconds)
    threads = max(1, settings.builder_threads)
    return Worker(dataclasses.replace(settings, worker_threads=threads), [builds, release_phases]), builds


def main() -> None:
    settings, database, stop = start_process()
    wire_hooks(database.hooks)
    register_runner_nudges(database.hooks, settings.data_dir)
    worker, _builds = make_builder(database, settings)
    listener = PushListener(database, settings)
    threading.Thread(target=listener.serve, args=(stop,), name="git-pushes", daemon=True).start()
    log.info("builder started (%d builds at a time, %d s each at most)", max(1, settings.builder_threads),
             settings.build_timeout_seconds)
    try:
        worker.serve(stop)
    finally:
        listener.close()


if __name__ == "__main__":
    main()
