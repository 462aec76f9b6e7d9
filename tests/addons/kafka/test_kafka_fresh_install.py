"""The first Kafka add-on of a fresh install, through a live Berth (gunicorn + broker worker):
the embedded broker is not running, and starting it takes longer than Berth waits for a provider
(made certain here with a 5 s provider timeout). The provider must answer 202, finish through the
partner endpoints, and leave nothing behind on deprovision."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, AdminClient
from confluent_kafka.admin import ResourcePatternType, ResourceType

from berth.addons import resources
from berth.addons.kafka import broker
from berth.addons.kafka.provider import KafkaProvider, describe_user_quotas
from berth.addons.kafka.reconcile import reconcile
from berth.config import Settings
from berth.db import Database
from tests.builtin_platform import BuiltinPlatform, builtin_platform, server_database

START_WITHIN = 240.0  # a JVM start on a loaded two-core machine, plus the callbacks


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltinPlatform]:
    with builtin_platform(tmp_path_factory.mktemp("fresh"), None, "fresh@example.com",
                          PROVIDER_TIMEOUT_SECONDS="5") as running:
        yield running


def until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
        time.sleep(0.5)


def acls(settings: Settings, principal: str) -> list[Any]:
    admin = AdminClient(broker.admin_client_config(settings))
    return list(admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal,
                                                     None, AclOperation.ANY, AclPermissionType.ANY)).result(30))


def snapshot(database: Database, uuid: str) -> dict[str, Any]:
    found = resources.snapshot(database, "kafka", uuid)
    assert found is not None
    return found


@pytest.mark.slow
def test_the_first_kafka_add_on_is_provisioned_and_deprovisioned_without_leftovers(
        platform: BuiltinPlatform, tmp_path: Path) -> None:
    settings, database = server_database(platform.server)
    try:
        assert not broker.running(settings)
        assert platform.call("POST", "/apps", name="fresh").status_code == 201
        created = platform.call("POST", "/apps/fresh/addons", plan="heroku-kafka")
        assert created.status_code == 201, created.text
        uuid = created.json()["id"]
        addon = until(lambda: (found := platform.call("GET", f"/addons/{uuid}").json())["state"] != "provisioning"
                      and found, START_WITHIN, "the add-on leaving `provisioning`")
        assert addon["state"] == "provisioned", addon
        config = platform.config("fresh")
        assert config["KAFKA_URL"].startswith("kafka+ssl://") and config["KAFKA_PREFIX"].endswith(".")
        record = snapshot(database, uuid)
        assert record["state"] == "active" and "pending" not in record
        principal = record["principal"]
        assert len(acls(settings, f"User:{principal}")) == 9
        endpoints = broker.endpoints(settings)
        assert endpoints is not None
        tls = broker.admin_ssl_context(settings)
        assert describe_user_quotas(endpoints.admin_bootstrap, principal, tls=tls) != {}
        made = platform.call("POST", f"/apps/fresh/addons/{uuid}/actions/topics-create", params={"name": "events"})
        assert made.status_code == 200, made.text

        assert platform.call("DELETE", f"/apps/fresh/addons/{uuid}").status_code == 200
        until(lambda: snapshot(database, uuid)["state"] == "deleted", 60, "the provider's record deleted")
        assert acls(settings, f"User:{principal}") == []
        until(lambda: describe_user_quotas(endpoints.admin_bootstrap, principal, tls=tls) == {}, 15, "quotas gone")
        topics = AdminClient(broker.admin_client_config(settings)).list_topics(timeout=30).topics
        assert not [name for name in topics if name.startswith(record["prefix"])]
        assert not reconcile(KafkaProvider(database, settings))  # and nothing else a reconciler would find
    finally:
        database.dispose()


@pytest.mark.slow
def test_an_add_on_destroyed_while_kafka_starts_leaves_nothing(platform: BuiltinPlatform) -> None:
    """A deprovision racing the provision: it waits for the add-on's lock, then removes what the
    provision made (or, first, a record nothing was made for)."""
    settings, database = server_database(platform.server)
    try:
        broker.stop(settings)  # as on a fresh install (or after a crash): the next add-on starts it
        assert platform.call("POST", "/apps", name="racing").status_code == 201
        created = platform.call("POST", "/apps/racing/addons", plan="heroku-kafka")
        assert created.status_code == 201, created.text
        uuid = created.json()["id"]
        assert created.json()["state"] == "provisioning"
        assert platform.call("DELETE", f"/apps/racing/addons/{uuid}").status_code == 200
        until(lambda: snapshot(database, uuid)["state"] == "deleted", START_WITHIN, "the provider's record deleted")
        record = snapshot(database, uuid)
        until(lambda: platform.call("GET", f"/addons/{uuid}").status_code == 404, 60, "the add-on gone at Berth")
        if broker.ready(settings):  # the provision got as far as starting it: nothing of it may remain
            assert acls(settings, f"User:{record['principal']}") == []
            endpoints = broker.endpoints(settings)
            assert endpoints is not None
            until(lambda: describe_user_quotas(endpoints.admin_bootstrap, record["principal"],
                                               tls=broker.admin_ssl_context(settings)) == {}, 15, "quotas gone")
            assert not reconcile(KafkaProvider(database, settings))
    finally:
        database.dispose()
