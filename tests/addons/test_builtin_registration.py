"""The first-party manifests are registered on start, and a restart that changes nothing leaves
the catalogue alone (no `$base` bump, no write); a stale entry is put right."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from berth import create_app
from berth.broker.models import AddonService, Plan
from berth.config import Settings
from tests.conftest import empty_all_tables


@pytest.fixture
def with_builtins(settings: Settings) -> Iterator[Settings]:
    yield replace(settings, builtin_addons=True)


def _bases(app: Flask) -> dict[str, int]:
    with app.extensions["berth.database"].session(write=False) as session:
        return {service.name: service.manifest_base for service in session.scalars(select(AddonService))}


def test_a_restart_leaves_unchanged_manifests_alone(with_builtins: Settings) -> None:
    first = create_app(with_builtins)
    try:
        before = _bases(first)
        assert set(before) == {"postgresql", "redis", "kafka", "logs"}
        second = create_app(with_builtins)
        assert _bases(second) == before
        second.extensions["berth.database"].dispose()

        database = first.extensions["berth.database"]
        with database.transaction() as session:  # a catalogue older than the code: a price changed
            plan = session.scalar(select(Plan).join(AddonService).where(
                AddonService.name == "postgresql", Plan.name == "essential-0"))
            assert plan is not None
            plan.cents = 1
        third = create_app(with_builtins)
        assert _bases(third)["postgresql"] == before["postgresql"] + 1
        assert {name: base for name, base in _bases(third).items() if name != "postgresql"} == \
            {name: base for name, base in before.items() if name != "postgresql"}
        with database.session(write=False) as session:
            assert session.scalar(select(Plan.cents).join(AddonService).where(
                AddonService.name == "postgresql", Plan.name == "essential-0")) == 500
        third.extensions["berth.database"].dispose()
    finally:
        empty_all_tables(first)
        first.extensions["berth.database"].dispose()


def test_a_first_party_client_secret_that_changed_is_put_right(with_builtins: Settings) -> None:
    """Kafka's manifest names the OAuth client secret its asynchronous provisions use: a catalogue
    holding another one (an install older than that) must take it, or every grant exchange fails."""
    first = create_app(with_builtins)
    try:
        database = first.extensions["berth.database"]
        with database.session(write=False) as session:
            kafka = session.scalar(select(AddonService).where(AddonService.name == "kafka"))
            assert kafka is not None and kafka.client_secret
            derived, base = kafka.client_secret, kafka.manifest_base
        with database.transaction() as session:
            stale = session.scalar(select(AddonService).where(AddonService.name == "kafka"))
            assert stale is not None
            stale.client_secret = "random-from-an-older-install"
        second = create_app(with_builtins)
        with database.session(write=False) as session:
            kafka = session.scalar(select(AddonService).where(AddonService.name == "kafka"))
            assert kafka is not None
            assert (kafka.client_secret, kafka.manifest_base) == (derived, base + 1)
        second.extensions["berth.database"].dispose()
    finally:
        empty_all_tables(first)
        first.extensions["berth.database"].dispose()
