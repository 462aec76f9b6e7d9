"""What one app process type becomes on Docker Swarm: a service whose replicas are the formation's
quantity. Pure: the Engine API's JSON built from plain values, no I/O (the client is swarm.py).

- Every task listens on the same PORT inside (DYNO_PORT); a web service publishes it in host mode
  with no published port, so each task gets an ephemeral port on its node, read back from the task's
  status: replicas of one service can share a node, and a task's address is <node address>:<port>.
  (Swarm's routing mesh needs IPVS, which this kernel lacks; dnsrr + host mode works everywhere.)
- A web task is healthy once something accepts connections on $PORT (a Docker HEALTHCHECK): Swarm
  keeps it `starting` until then, so a start-first rolling update stops an old task only once its
  replacement is up, and a task still not listening after the boot timeout is killed (R10).
- `DYNO` is `<type>.<slot>` through Swarm's template, so slot N is dyno `web.N`.
- The spec's hash is kept in a label, so a round that wants what runs changes nothing.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from berth.platform.dyno_process import dyno_argv, dyno_environment
from berth.platform.dynos.backend import STOP_GRACE, DynoSize
from berth.platform.dynos.images import DYNO_USER  # the stack image's unprivileged account

__all__ = ["ServiceSpec", "DYNO_PORT", "LABEL", "service_name"]

DYNO_PORT = 5000  # inside every container; each web task's published port is its own
LABEL = "berth."  # every label Berth sets starts so; services without berth.app_id are not Berth's
NANO = 1_000_000_000
HEALTH_INTERVAL = 1.0  # seconds between looks at $PORT (Docker 20.10 has no faster start interval)
HEALTH_RETRIES = 3


def service_name(app_id: str, process_type: str) -> str:
    """`berth-<app id without dashes>-<type>`: a DNS label, as Swarm wants (63 characters, letters,
    digits, dashes). A type's `_` or `.` (`run.42`) becomes `-`; a type that had one gets a short hash
    of itself too, so `a_b` and `a-b` stay two services."""
    label = re.sub(r"[^a-z0-9-]", "-", process_type.lower())
    if label != process_type:
        label = f"{label[:22]}-{hashlib.sha256(process_type.encode()).hexdigest()[:6]}"
    return f"berth-{app_id.replace('-', '')[:24]}-{label}"[:63]


@dataclass(frozen=True)
class ServiceSpec:
    app_id: str
    process_type: str
    quantity: int
    command: str
    size: DynoSize
    size_key: str  # the formation's size key, as the dynos table records it
    release_id: str
    release_version: int
    image: str  # <registry>/…@digest or :tag, the stack plus the release's slug
    env: Mapping[str, str] = field(repr=False)  # the release's config: secrets, never printed
    boot_timeout: float = 60.0
    restart_delay: float = 20.0  # Swarm's delay before replacing a crashed task
    stop_grace: float = STOP_GRACE
    # A one-off dyno (`run.N` as process_type): one task, never restarted, never routed, and not a
    # formation service (the runner leaves it alone).
    one_off: bool = False

    @property
    def name(self) -> str:
        return service_name(self.app_id, self.process_type)

    @property
    def web(self) -> bool:
        return self.process_type == "web" and not self.one_off

    @property
    def dyno(self) -> str:
        return self.process_type if self.one_off else f"{self.process_type}.{{{{.Task.Slot}}}}"

    def labels(self) -> dict[str, str]:
        """On the service and on each task's container: enough to record a task as a dyno."""
        return {f"{LABEL}{'one_off' if self.one_off else 'app_id'}": self.app_id, f"{LABEL}type": self.process_type,
                f"{LABEL}release_id": self.release_id, f"{LABEL}release_version": str(self.release_version),
                f"{LABEL}size": self.size_key, f"{LABEL}command": self.command}

    def task_template(self) -> dict[str, Any]:
        container: dict[str, Any] = {
            "Image": self.image,
            "Command": dyno_argv(self.command),
            "Env": [f"{key}={value}" for key, value in
                    dyno_environment(self.env, self.dyno, None if self.one_off else DYNO_PORT).items()],
            "Dir": "/app",
            "User": DYNO_USER,
            "Labels": self.labels(),
            "StopSignal": "SIGTERM",
            "StopGracePeriod": int(self.stop_grace * NANO),
            "CapabilityDrop": ["ALL"],
            "Init": True,  # reaps the app's orphans, forwards SIGTERM to it
        }
        if self.web:
            container["Healthcheck"] = {
                # bash's /dev/tcp: the stack has no curl; $PORT is the container's own.
                "Test": ["CMD", "/bin/bash", "-c", 'exec 3<>"/dev/tcp/127.0.0.1/$PORT"'],
                "Interval": int(HEALTH_INTERVAL * NANO), "Timeout": int(2 * NANO), "Retries": HEALTH_RETRIES,
                "StartPeriod": int(self.boot_timeout * NANO),
            }
        return {
            "ContainerSpec": container,
            "Resources": {"Limits": {"MemoryBytes": self.size.memory_kill, "Pids": self.size.processes}},
            "RestartPolicy": ({"Condition": "none"} if self.one_off else
                              {"Condition": "any", "Delay": int(self.restart_delay * NANO), "MaxAttempts": 0}),
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "16m", "max-file": "2"}},
        }

    def endpoint_spec(self) -> dict[str, Any]:
        if not self.web:
            return {"Mode": "dnsrr"}
        return {"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": DYNO_PORT, "PublishMode": "host"}]}

    def update_config(self) -> dict[str, Any]:
        """Rolling: one task at a time, the new one up (healthy) before the old one is stopped."""
        return {"Parallelism": 1, "Order": "start-first", "FailureAction": "continue",
                "Monitor": int(5 * NANO), "Delay": 0}

    def spec_hash(self) -> str:
        """What decides whether running tasks must be replaced (not the replica count)."""
        canonical = json.dumps([self.task_template(), self.endpoint_spec()], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def service_labels(self) -> dict[str, str]:
        return {**self.labels(), f"{LABEL}spec": self.spec_hash()}

    def body(self) -> dict[str, Any]:
        """The whole service spec (POST /services/create, or /update with a version)."""
        return {"Name": self.name, "Labels": self.service_labels(), "TaskTemplate": self.task_template(),
                "Mode": {"Replicated": {"Replicas": self.quantity}}, "UpdateConfig": self.update_config(),
                "RollbackConfig": self.update_config(), "EndpointSpec": self.endpoint_spec()}

