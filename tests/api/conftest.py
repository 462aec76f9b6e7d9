"""Fixtures shared by the API tests that talk to the example partner."""
from __future__ import annotations

from typing import Iterator

import pytest
from flask import Flask

from berth.broker import catalogue
from berth.jobs.worker import Worker
from berth.worker import make_worker
from tests.partners.harness import ExamplePartner, run_example_partner


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplePartner]:
    """One example partner process per test module; each test sets the mode it needs."""
    with run_example_partner(tmp_path_factory.mktemp("partner")) as running:
        yield running


def register_partner(app: Flask, partner: ExamplePartner, requires: tuple[str, ...] = ()) -> Worker:
    """Put the partner in the catalogue (sync mode) and return a worker the test drives."""
    partner.set_mode("sync")
    with app.extensions["berth.database"].transaction() as session:
        catalogue.register_manifest(session, partner.manifest(requires=requires), owner=None)
    return make_worker(app.extensions["berth.database"], app.config["BERTH_SETTINGS"])
