"""The runner in Swarm mode (BERTH_RUNNER=swarm): each round converges one Swarm service per app
process type on what the formation wants (the release's image, replicas = quantity, the size's
limits) and reads the tasks back as dynos. Swarm schedules, restarts crashed tasks and rolls
deploys (start-first, health by $PORT); the runner records, routes and logs what it sees, from the
same `dynos` rows and router table the local runner keeps.

Images are made off the round (a slug's first image is built and pushed once, then re-used by its
checksum, a rollback's too): a release goes live on the swarm when its image is in the registry.

With each node's own engine known (BERTH_SWARM_NODE_ENGINES), a thread of its own follows the
rounds and reads the running tasks' memory there (R14, R15: swarm_memory.py), and a task that ended
with SIGKILL is looked up on its node to tell an OOM kill (R15) from another. Without them the
manager says neither: no R14, and an OOM kill reads as `Process exited with status 137`.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Mapping

from berth.config import Settings
from berth.db import Database
from berth.jobs.wakeup import nudge_runner
from berth.platform import dyno_sizes
from berth.platform.dynos.backend import DynoError, DynoSize, DynoStatus
from berth.platform.dynos.swarm import RunningService, SwarmBackend, TaskFacts
from berth.platform.dynos.swarm_engines import EngineError, NodeEngines
from berth.platform.dynos.swarm_lifecycle import ended, lifecycle_lines
from berth.platform.dynos.swarm_memory import MemoryWatch, Watched
from berth.platform.dynos.swarm_logs import ServiceOutput
from berth.platform.dynos.swarm_spec import ServiceSpec
from berth.platform.logs.app_log import AppLog
from berth.platform.router.connections import abort_connections
from berth.platform.router.table import Dyno as RoutedDyno
from berth.platform.runner import records
from berth.platform.runner.desired import AppWants, wanted
from berth.platform.runner.ownership import Ownership, SoleOwnership
from berth.platform.runner.service import Router, run_rounds

__all__ = ["SwarmRunner", "ImageOf"]

log = logging.getLogger("berth.runner")
ImageOf = Callable[[str], str]  # slug checksum → the image's reference in the registry (built and pushed)
IMAGE_THREADS = 2
LOST_ABORT_SECONDS = 10.0


class SwarmRunner:
    def __init__(self, database: Database, settings: Settings, backend: SwarmBackend, image_of: ImageOf, *,
                 boot_timeout: float | None = None, ownership: Ownership | None = None,
                 engines: NodeEngines | None = None) -> None:
        self.database, self.settings, self.backend, self.image_of = database, settings, backend, image_of
        self.engines = engines if engines else None
        self.memory = MemoryWatch(engines) if engines else None
        self._observed = threading.Event()  # a round has seen the tasks: the memory watch may sample them
        self._memory_cost = _Cost()
        # Several control-plane nodes: each app's services are converged, recorded and logged by the
        # runner holding its shard; every node's router routes every task.
        self.ownership: Ownership = ownership or SoleOwnership()
        self.boot_timeout = boot_timeout or settings.dyno_boot_timeout_seconds
        self.router: Router | None = None
        self.observed: list[DynoStatus] = []
        self.wants: dict[str, AppWants] = {}
        self._tasks: dict[str, TaskFacts] = {}  # task id → what the last round saw
        self._lock = threading.Lock()
        self._configs: dict[str, Mapping[str, str]] = {}
        self._images: dict[str, Future[str]] = {}  # slug checksum → its image being made, or made
        self._image_pool = ThreadPoolExecutor(IMAGE_THREADS, thread_name_prefix="swarm-image")
        self._outputs: dict[str, ServiceOutput] = {}  # service id → its output follower
        self._started_at = time.time()
        self._refused: dict[str, str] = {}  # service name → the last refusal told to the app's log
        # Addresses of dynos whose machine went away → until when their connections are aborted
        # (each round: nginx workers of the table before may still retry there).
        self._lost: dict[str, float] = {}

    # -- what the router asks ----------------------------------------------------------------------

    def dynos_of(self, app_id: str) -> tuple[tuple[RoutedDyno, ...], bool]:
        with self._lock:
            observed, wants = list(self.observed), self.wants.get(app_id)
        web = [status for status in observed if status.app_id == app_id and status.name.startswith("web.")]
        up = tuple(RoutedDyno(status.name, status.address) for status in web
                   if status.state == "up" and status.address)
        crashed = not up and wants is not None and wants.wants_web and any(status.state == "crashed" for status in web)
        return up, crashed

    # -- rounds ------------------------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        if self.memory is not None:
            threading.Thread(target=self._watch_memory, args=(stop,), daemon=True, name="swarm-memory").start()
        try:
            run_rounds(self.round, self.settings.data_dir, stop)
        finally:
            self.ownership.release()
            if self.memory is not None:
                self.memory.close()
            self._image_pool.shutdown(wait=False, cancel_futures=True)
            for output in list(self._outputs.values()):
                output.close()

    def round(self) -> None:
        self.ownership.refresh()
        owns = self.ownership.owns
        wants = {app_id: want for app_id, want in wanted(self.database, self._configs).items() if owns(app_id)}
        requests = records.take_requests(self.database, owns)
        services = {service.name: service for service in self.backend.services()}
        if not self.ownership.valid():  # a runner whose leases may have lapsed acts on nothing
            self._observe(wants, list(services.values()))
            return
        specs = self._specs(wants)
        for name, spec in specs.items():
            self._converge(spec, services.get(name))
        for name, service in services.items():
            if owns(service.app_id) and name not in specs and not self._waiting_for_image(service, wants):
                log.info("removing service %s (its app or process type is gone)", name)
                self.backend.remove(service)
        for request in requests:  # a user's restart or stop: Swarm replaces the type's tasks, rolling
            process_type = request.type or (request.name or "").rpartition(".")[0] or None
            for service in services.values():
                if service.app_id == request.app_id and process_type in (None, service.process_type):
                    self.backend.restart(service)
        self._observe(wants, self.backend.services())

    def _specs(self, wants: dict[str, AppWants]) -> dict[str, ServiceSpec]:
        """The services wanted now, for releases whose image is ready (others are being made)."""
        specs: dict[str, ServiceSpec] = {}
        for app in wants.values():
            by_type: dict[str, list] = {}
            for dyno in app.dynos:
                by_type.setdefault(dyno.type, []).append(dyno)
            for process_type, dynos in by_type.items():
                first = dynos[0]
                image = self._image(first.slug_checksum, app.app_id)
                if image is None:
                    continue
                size = dyno_sizes.of_stored(first.size)
                spec = ServiceSpec(app_id=app.app_id, process_type=process_type, quantity=len(dynos),
                                   command=first.command,
                                   size=DynoSize(size.key, size.memory_bytes, 2 * size.memory_bytes,
                                                 size.process_limit),
                                   size_key=first.size, release_id=first.release_id,
                                   release_version=first.release_version, image=image, env=first.env,
                                   boot_timeout=self.boot_timeout, restart_delay=self.settings.crash_cool_off_seconds)
                specs[spec.name] = spec
        return specs

    def _waiting_for_image(self, service: RunningService, wants: dict[str, AppWants]) -> bool:
        """A type still wanted whose new release's image is being made keeps its service meanwhile."""
        app = wants.get(service.app_id)
        return app is not None and any(dyno.type == service.process_type for dyno in app.dynos)

    def _image(self, checksum: str, app_id: str) -> str | None:
        future = self._images.get(checksum)
        if future is None:
            future = self._images[checksum] = self._image_pool.submit(self.image_of, checksum)
            future.add_done_callback(lambda _: nudge_runner(self.settings.data_dir))
        if not future.done():
            return None
        try:
            return future.result()
        except Exception as exc:  # told to the app's log once; tried again after a cool-off
            del self._images[checksum]
            self._tell(app_id, "web", f"image:{checksum}",
                       f"Error R99 (Platform error) -> the release's image could not be made: {exc}. Berth "
                       "tries again; deploying again may help.")
            return None

    def _converge(self, spec: ServiceSpec, running: RunningService | None) -> None:
        try:
            what = self.backend.converge(spec, running)
        except DynoError as exc:
            self._tell(spec.app_id, spec.process_type, spec.name,
                       f"Error R99 (Platform error) -> the swarm refused {spec.process_type} of "
                       f"v{spec.release_version}: {exc}. Berth tries again every round.")
            return
        self._refused.pop(spec.name, None)
        if what != "unchanged":
            log.info("service %s %s (v%s, %d replicas)", spec.name, what, spec.release_version, spec.quantity)

    def _tell(self, app_id: str, process_type: str, key: str, message: str) -> None:
        """A refusal into the app's log (and Berth's), once until it changes: no line every round."""
        log.warning("%s", message)
        if self._refused.get(key) == message:
            return
        self._refused[key] = message
        app_log = AppLog(self.database, app_id, process_type)
        app_log.line(message, source="heroku")
        app_log.close()

    # -- what runs ---------------------------------------------------------------------------------

    def _observe(self, wants: dict[str, AppWants], services: list[RunningService]) -> None:
        tasks = self.backend.tasks()
        now = time.monotonic()
        for task in tasks:
            before = self._tasks.get(task.status.id)
            if not task.node_ready and before is not None and before.status.state == "up" and before.status.address:
                log.warning("%s of app %s: its machine %s stopped answering; routing away from %s",
                            task.status.name, task.status.app_id, task.node or "?", before.status.address)
                self._lost[before.status.address] = now + LOST_ABORT_SECONDS
        owns = self.ownership.owns
        self._log_lifecycle(tasks, owns)
        self._observed.set()
        statuses = [facts.status for facts in tasks]
        facts = {task.status.id: records.DynoFacts(task.command, task.size or "standard-1x", task.release_id)
                 for task in tasks}
        with self._lock:
            self.wants, self.observed = wants, statuses
        self._follow_output([service for service in services if owns(service.app_id)])
        if self.ownership.valid():  # rows of others' apps are their runners' to write
            records.sync(self.database, [status for status in _one_per_name(statuses) if owns(status.app_id)],
                         facts, owns)
        if self.router is not None:
            self.router.route()
        self._lost = {address: until for address, until in self._lost.items() if until > now}
        if self._lost:
            abort_connections(self._lost)

    def _log_lifecycle(self, tasks: list[TaskFacts], owns: Callable[[str], bool]) -> None:
        """Every task is remembered (a machine's loss is noticed for every app this router routes);
        lines are written only for apps this runner owns, so no line is written twice."""
        lines: dict[tuple[str, str], list[str]] = {}
        for task in tasks:
            before = self._tasks.get(task.status.id)
            if not owns(task.status.app_id):
                continue
            # A task made before this runner started is adopted silently (its start was logged then).
            said = lifecycle_lines(before, task, boot_timeout=self.boot_timeout,
                                   adopted=task.status.started_at < self._started_at,
                                   oom_killed=self._oom_killed(before, task))
            if said:
                lines.setdefault((task.status.app_id, task.status.name), []).extend(said)
        self._tasks = {task.status.id: task for task in tasks}
        for (app_id, name), said in lines.items():
            app_log = AppLog(self.database, app_id, name, data_dir=self.settings.data_dir)
            for line in said:
                app_log.line(line, source="heroku")
            app_log.close()

    def _oom_killed(self, before: TaskFacts | None, task: TaskFacts) -> bool:
        """Whether a task that just ended with SIGKILL was killed by the kernel at its memory limit,
        as its node's engine says (not when the memory watch killed it: it said R15 then)."""
        if self.engines is None or not ended(before, task) or task.status.exit_status != 137:
            return False
        if self.memory is not None and self.memory.killed_for_r15(task.status.id):
            return False
        if not (task.container_id and task.node_ready and self.engines.knows(task.node)):
            return False
        try:
            return self.engines.oom_killed(task.node, task.container_id)
        except EngineError as exc:
            log.warning("%s of app %s ended with SIGKILL; whether for its memory is unknown: %s",
                        task.status.name, task.status.app_id, exc)
            return False

    def _watch_memory(self, stop: threading.Event) -> None:
        """After each round, the memory of the running tasks of apps this runner owns: R14, R15."""
        assert self.memory is not None
        while not stop.is_set():
            if not self._observed.wait(1.0):
                continue
            self._observed.clear()
            try:
                self._memory_round()
            except Exception:  # a database away: the next round tries again
                log.exception("memory watch round failed; retrying")

    def _memory_round(self) -> None:
        assert self.memory is not None
        owns = self.ownership.owns
        watched = []
        for task in list(self._tasks.values()):
            if (task.task_state not in ("starting", "running") or not task.node_ready or not task.container_id
                    or not owns(task.status.app_id)):
                continue
            quota = dyno_sizes.of_stored(task.size or "standard-1x").memory_bytes
            watched.append(Watched(task.status.id, task.status.app_id, task.status.name, task.node,
                                   task.container_id, quota, 2 * quota))  # the container's limit (_specs)
        notices = self.memory.round(watched)
        self._memory_cost.add(len(watched), self.memory.last_round_seconds)
        for notice in notices:
            app_log = AppLog(self.database, notice.app_id, notice.dyno, data_dir=self.settings.data_dir)
            for line in notice.lines:
                app_log.line(line, source="heroku")
            app_log.close()

    def _follow_output(self, services: list[RunningService]) -> None:
        live = {service.id: service for service in services}
        for service_id in set(self._outputs) - set(live):
            self._outputs.pop(service_id).close()
        for service_id, service in live.items():
            if service_id not in self._outputs:
                # From this runner's start, or, for an app taken over since, from when its previous
                # runner stopped (it forwarded what came before: forwarding that again repeats it).
                since = max(self._started_at, self.ownership.handed_over_at(service.app_id))
                self._outputs[service_id] = ServiceOutput(
                    self.database, self.backend, service_id, service.app_id,
                    lambda task_id, kind=service.process_type: self._dyno_name(task_id, kind),
                    since=since, data_dir=self.settings.data_dir)

    def _dyno_name(self, task_id: str, process_type: str) -> str | None:
        known = self._tasks.get(task_id)
        if known is not None:
            return known.status.name
        slot = self.backend.task_slot(task_id)
        return f"{process_type}.{slot}" if slot is not None else None


class _Cost:
    """What the memory watch costs, told to the runner's log once a minute."""

    EVERY = 60.0

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.rounds, self.tasks, self.seconds, self.slowest = 0, 0, 0.0, 0.0
        self.since = time.monotonic()

    def add(self, tasks: int, seconds: float) -> None:
        self.rounds, self.tasks, self.seconds = self.rounds + 1, self.tasks + tasks, self.seconds + seconds
        self.slowest = max(self.slowest, seconds)
        if time.monotonic() - self.since >= self.EVERY and self.rounds:
            log.info("memory watch: %d rounds, %.1f tasks and %.3f s a round on average (slowest %.3f s)",
                     self.rounds, self.tasks / self.rounds, self.seconds / self.rounds, self.slowest)
            self._reset()


def _one_per_name(statuses: list[DynoStatus]) -> list[DynoStatus]:
    """What the dynos table shows: per app and name, the live task (the newest one if a rolling
    update runs two), else the crashed one. Ended tasks (`down`) are history, not shown."""
    chosen: dict[tuple[str, str], DynoStatus] = {}
    rank = {"up": 2, "starting": 1, "crashed": 0}
    for status in statuses:
        if status.state not in rank:
            continue
        key = (status.app_id, status.name)
        current = chosen.get(key)
        if current is None or (rank[status.state], status.started_at) > (rank[current.state], current.started_at):
            chosen[key] = status
    return list(chosen.values())
