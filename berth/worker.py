"""The worker process: every job type that is quick to run, in one `berth.jobs.worker.Worker`.

`python -m berth.worker` runs it (`make run` starts one). Like `create_app`, this is a
composition root: the job queue sits below the broker and the platform, so the job types they
define are wired here. (Builds, which run for minutes, get a worker process of their own.)
"""
from __future__ import annotations

import logging

from berth import wire_hooks
from berth.broker.addon_jobs import AddonOperations
from berth.broker.partner_api.client import ProviderClient
from berth.config import Settings
from berth.db import Database
from berth.jobs.worker import Worker
from berth.platform.app_setups.job import AppSetupJobs
from berth.platform.app_setups.postdeploy import SlugPostdeploy
from berth.platform.app_cleanup import register_cleaner
from berth.platform.runner.nudges import register_runner_nudges
from berth.platform.slug_retention import SlugRetentionSweep
from berth.platform.slug_store import slug_store_of
from berth.process import start_process

log = logging.getLogger("berth.worker")


def make_worker(database: Database, settings: Settings, client: ProviderClient | None = None) -> Worker:
    postdeploy = SlugPostdeploy(slug_store_of(settings), settings.data_dir, settings.postdeploy_timeout_seconds)
    setups = AppSetupJobs(database, settings, postdeploy, timeout_seconds=settings.postdeploy_timeout_seconds)
    # Slug retention is housekeeping with no jobs of its own: the worker's sweep runs it hourly.
    return Worker(settings, [AddonOperations(database, settings, client), setups,
                             SlugRetentionSweep(database, slug_store_of(settings))])


def main() -> None:
    settings, database, stop = start_process()
    wire_hooks(database.hooks)
    # A failed app setup destroys its app here: its files go too.
    register_cleaner(database.hooks, database, settings)
    register_runner_nudges(database.hooks, settings.data_dir)
    log.info("worker started (%d threads)", settings.worker_threads)
    make_worker(database, settings).serve(stop)


if __name__ == "__main__":
    main()
