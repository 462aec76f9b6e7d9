"""The Docker Swarm backend: app process types as Swarm services (swarm_spec.py), their tasks as
dynos. It schedules by itself, so it is driven per service (`converge`), not per dyno; what it runs
is read back as the same DynoStatus records the local backend gives (task slot N → dyno `web.N`),
so the `dynos` table, `heroku ps`, the router and the log stream work from them unchanged.

Task states become dyno states: new…starting (a web task stays `starting` until its health check
sees $PORT) → starting, running → up, failed/rejected → crashed (the slot's newest task only; Swarm
replaces it after the restart delay), anything desired to stop (replaced by a rolling update, scaled
down, on a node that went down) → down, never routed. The manager keeps every node's tasks, so one
endpoint (BERTH_DOCKER_HOST) sees the whole swarm.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

import docker
from docker.errors import APIError, DockerException, NotFound

from berth.platform.dynos.backend import DynoError, DynoStatus
from berth.platform.dynos.swarm_spec import LABEL, ServiceSpec
from berth.platform.slug_store import SlugStore

__all__ = ["SwarmBackend", "RunningService", "TaskFacts", "API_VERSION", "image_maker"]

log = logging.getLogger(__name__)
API_VERSION = "1.41"  # Docker 20.10 (Debian 12's docker.io): pids limits, capability drops
STARTING = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting")
FAILED = ("failed", "rejected", "orphaned")
HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True)
class RunningService:
    id: str
    name: str
    app_id: str
    process_type: str
    spec_hash: str
    replicas: int
    version: int  # Swarm's object version, which an update must name


@dataclass(frozen=True)
class TaskFacts:
    """A dyno's status plus what only Swarm says: why a task ended, for the lifecycle lines."""

    status: DynoStatus
    service: str
    command: str
    size: str
    release_id: str | None
    task_state: str
    error: str
    node: str
    node_ready: bool = True  # False: the machine stopped answering the manager
    container_id: str = ""  # on the node's own engine, once the task has one


class SwarmBackend:
    def __init__(self, docker_host: str, *, timeout: float = 30.0) -> None:
        try:
            self.api = docker.APIClient(base_url=docker_host, version=API_VERSION, timeout=timeout)
        except DockerException as exc:
            raise DynoError(f"the swarm manager's endpoint cannot be used ({type(exc).__name__}): "
                            "check BERTH_DOCKER_HOST") from exc
        self.docker_host = docker_host

    def tune_failure_detection(self, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        """Nodes beat to the manager every `heartbeat` seconds (Swarm's default is 5 s, a dead node is
        noticed after ~3 beats): a machine that dies has its dynos replaced within seconds."""
        swarm = self._call(self.api.inspect_swarm)
        spec = swarm["Spec"]
        period = int(heartbeat * 1_000_000_000)
        if (spec.get("Dispatcher") or {}).get("HeartbeatPeriod") == period:
            return
        spec.setdefault("Dispatcher", {})["HeartbeatPeriod"] = period
        self._call(self.api._post_json, self.api._url("/swarm/update"), data=spec,
                   params={"version": swarm["Version"]["Index"]}, result=False)
        log.info("swarm heartbeat set to %.1f s", heartbeat)

    # -- services ----------------------------------------------------------------------------------

    def services(self) -> list[RunningService]:
        found = []
        for service in self._call(self.api.services, filters={"label": f"{LABEL}app_id"}):
            spec = service["Spec"]
            labels = spec.get("Labels") or {}
            replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0)
            found.append(RunningService(service["ID"], spec["Name"], labels.get(f"{LABEL}app_id", ""),
                                        labels.get(f"{LABEL}type", ""), labels.get(f"{LABEL}spec", ""),
                                        int(replicas), int(service["Version"]["Index"])))
        return found

    def converge(self, spec: ServiceSpec, running: RunningService | None) -> str:
        """Make the service run `spec`: created, rolled (a new spec: start-first, one task at a time),
        scaled, or left alone. Says which, for the runner's log."""
        body = spec.body()
        if running is None:
            self.create(spec)
            return "created"
        if running.app_id != spec.app_id:
            raise DynoError(f"a service named {spec.name} belongs to another app ({running.app_id}): remove it")
        if running.spec_hash == spec.spec_hash() and running.replicas == spec.quantity:
            return "unchanged"
        if running.spec_hash == spec.spec_hash():
            # Only the count: the running spec as it is (its ForceUpdate counter too), with new replicas.
            current = self._call(self.api.inspect_service, running.id)["Spec"]
            current["Mode"] = {"Replicated": {"Replicas": spec.quantity}}
            body, what = current, "scaled"
        else:
            what = "rolled"
        self._update(running, body)
        return what

    def create(self, spec: ServiceSpec) -> str:
        """A new service running `spec`; its id."""
        return self._call(self.api._post_json, self.api._url("/services/create"), data=spec.body(), result=True)["ID"]

    def task_of(self, service_id: str) -> dict[str, Any] | None:
        """The newest task of a one-task service, None when it has none (yet, or any more)."""
        try:
            tasks = self._call(self.api.tasks, filters={"service": service_id})
        except DynoError:
            return None
        return max(tasks, key=_created) if tasks else None

    def remove_service_id(self, service_id: str) -> None:
        try:
            self._call(self.api.remove_service, service_id)
        except DynoError as exc:
            if not isinstance(exc.__cause__, NotFound):
                raise

    def restart(self, running: RunningService) -> None:
        """Every task of the service replaced (rolling, start-first): a user's `ps:restart`."""
        current = self._call(self.api.inspect_service, running.id)["Spec"]
        template = current.setdefault("TaskTemplate", {})
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        self._update(running, current)

    def remove(self, running: RunningService) -> None:
        self.remove_service_id(running.id)

    def _update(self, running: RunningService, body: dict[str, Any]) -> None:
        self._call(self.api._post_json, self.api._url("/services/{0}/update", running.id), data=body,
                   params={"version": running.version}, result=False)

    # -- tasks as dynos ----------------------------------------------------------------------------

    def tasks(self) -> list[TaskFacts]:
        """Every Berth task the swarm keeps (its recent history too), as dynos."""
        nodes = self._nodes()
        services = {service.id: service for service in self.services()}
        raw = [task for task in self._call(self.api.tasks, filters={"label": f"{LABEL}app_id"})
               if task.get("ServiceID") in services] if services else []
        newest: dict[tuple[str, int], dict[str, Any]] = {}
        for task in raw:
            key = (task["ServiceID"], int(task.get("Slot") or 0))
            if key not in newest or _created(task) > _created(newest[key]):
                newest[key] = task
        found = []
        for task in raw:
            state = _dyno_state(task, nodes, newest[(task["ServiceID"], int(task.get("Slot") or 0))] is task)
            found.append(self._facts(task, state, nodes, services[task["ServiceID"]]))
        return found

    def list(self, app_id: str | None = None) -> list[DynoStatus]:
        return [facts.status for facts in self.tasks() if app_id is None or facts.status.app_id == app_id]

    def task_slot(self, task_id: str) -> int | None:
        """A task's slot, None when the swarm no longer has it."""
        try:
            return int(self._call(self.api.inspect_task, task_id).get("Slot") or 0)
        except DynoError:
            return None

    def _facts(self, task: dict[str, Any], state: str, nodes: dict[str, "_Node"],
               service: RunningService) -> TaskFacts:
        labels = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
        status = task.get("Status") or {}
        node = nodes.get(task.get("NodeID") or "")
        address = None
        ports = (status.get("PortStatus") or {}).get("Ports") or []
        if ports and node is not None and ports[0].get("PublishedPort"):
            address = f"{node.address}:{ports[0]['PublishedPort']}"
        exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
        version = labels.get(f"{LABEL}release_version")
        dyno = DynoStatus(id=task["ID"], app_id=labels.get(f"{LABEL}app_id", service.app_id),
                          name=f"{service.process_type}.{task.get('Slot') or 0}", state=state,
                          exit_status=exit_code if state in ("crashed", "down") else None, address=address,
                          started_at=_created(task), release_version=int(version) if version else None)
        return TaskFacts(dyno, service.name, labels.get(f"{LABEL}command", ""), labels.get(f"{LABEL}size", ""),
                         labels.get(f"{LABEL}release_id"), str(status.get("State", "")), str(status.get("Err", "")),
                         node.hostname if node else "", node is None or node.ready,
                         str((status.get("ContainerStatus") or {}).get("ContainerID") or ""))

    def ready_nodes(self) -> list[str]:
        """Hostnames of the nodes that are up and take new work (availability `active`)."""
        return sorted(node["Description"]["Hostname"] for node in self._call(self.api.nodes)
                      if (node.get("Status") or {}).get("State") == "ready"
                      and (node.get("Spec") or {}).get("Availability", "active") == "active"
                      and (node.get("Description") or {}).get("Hostname"))

    def _nodes(self) -> dict[str, "_Node"]:
        found = {}
        for node in self._call(self.api.nodes):
            status = node.get("Status") or {}
            address = status.get("Addr") or ""
            if address in ("", "0.0.0.0"):  # a manager may report its listen address: its advertised one
                address = ((node.get("ManagerStatus") or {}).get("Addr") or "").rpartition(":")[0]
            found[node["ID"]] = _Node(address, status.get("State", "unknown") == "ready",
                                      (node.get("Description") or {}).get("Hostname", node["ID"][:12]))
        return found

    # -- output ------------------------------------------------------------------------------------

    def logs(self, service_id: str, since: float) -> Iterator[bytes]:
        """The service's output from `since` (Unix time) on, following: one frame a line, each
        `<RFC 3339 time> <details> <text>` (details name the task)."""
        return self._call(self.api.service_logs, service_id, details=True, follow=True, stdout=True, stderr=True,
                          timestamps=True, since=f"{max(0.0, since):.6f}", is_tty=False)

    def _call(self, method: Any, *args: Any, result: bool | None = None, **kwargs: Any) -> Any:
        try:
            answer = method(*args, **kwargs)
            if result is not None:
                return self.api._result(answer, result)
            return answer
        except (APIError, DockerException, OSError) as exc:
            # The daemon's own words, else only the kind of failure: a connection error's text names
            # the endpoint, a platform credential, and this message reaches the app's log (R99); the
            # operator's log has the whole chain.
            explanation = getattr(exc, "explanation", None) or f"cannot reach it ({type(exc).__name__})"
            raise DynoError(f"the swarm manager refused or failed: {explanation}") from exc

    def close(self) -> None:
        self.api.close()


def image_maker(docker_host: str, registry: str, store: SlugStore) -> Callable[[str], str]:
    """slug checksum → its app image in `registry`, built and pushed through `docker_host` once."""
    from berth.platform.dynos.images import ensure_slug_image

    client = docker.DockerClient(base_url=docker_host, version=API_VERSION, timeout=600)
    return lambda checksum: ensure_slug_image(client, registry, store, checksum)


@dataclass(frozen=True)
class _Node:
    address: str
    ready: bool
    hostname: str


def _created(task: dict[str, Any]) -> float:
    return _time(task.get("CreatedAt") or "")


def _time(stamp: str) -> float:
    """Docker's RFC 3339 times carry nanoseconds, which fromisoformat (3.11) does not take."""
    if not stamp:
        return 0.0
    head, _, fraction = stamp.rstrip("Z").partition(".")
    zone = ""
    for sign in ("+", "-"):
        if sign in fraction:
            fraction, zone = fraction.split(sign, 1)[0], sign + fraction.split(sign, 1)[1]
    try:
        parsed = datetime.fromisoformat(f"{head}{zone or '+00:00'}")
    except ValueError:
        return 0.0
    return parsed.timestamp() + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def _dyno_state(task: dict[str, Any], nodes: dict[str, _Node], newest: bool) -> str:
    """The dyno state of a task. Only the newest task of a slot can be `crashed`; older ones that
    ended are `down` (history the dynos table does not show)."""
    state = (task.get("Status") or {}).get("State", "")
    desired = task.get("DesiredState", "")
    node = nodes.get(task.get("NodeID") or "")
    if desired in ("running", "ready") and (node is None or node.ready):
        if state == "running":
            return "up"
        if state in STARTING:
            return "starting"
        return "crashed" if newest else "down"
    # Stopping or stopped: replaced, scaled down, a user's restart, its node gone. One still
    # running (a start-first update's old task, one on a node that went away) is never routed.
    return "crashed" if newest and state in FAILED and desired in ("running", "ready") else "down"
