"""GET /ca.pem: the installation CA's certificate, to anyone, as text; never its key."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from cryptography import x509
from flask import Flask

from berth import create_app
from berth.certificates import installation_ca
from berth.config import Settings
from tests.conftest import TEST_KEY


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'berth.sqlite3'}",
                        secret_keys=(TEST_KEY,), builtin_addons=False)
    flask_app = create_app(settings)
    yield flask_app
    flask_app.extensions["berth.database"].dispose()


def test_anyone_gets_the_ca_certificate_as_text(app: Flask, tmp_path: Path) -> None:
    answer = app.test_client().get("/ca.pem")  # no API key
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    assert answer.get_data(as_text=True) == installation_ca(tmp_path).cert_pem
    certificate = x509.load_pem_x509_certificate(answer.get_data())
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert b"PRIVATE KEY" not in answer.get_data()


def test_only_get_is_answered_in_herokus_error_shape(app: Flask) -> None:
    answer = app.test_client().post("/ca.pem")
    assert answer.status_code == 405
    assert set(answer.get_json()) >= {"id", "message"}


def test_a_broken_ca_is_a_500_that_says_what_to_do(app: Flask, tmp_path: Path) -> None:
    installation_ca(tmp_path)
    (tmp_path / "ca" / "ca.key").write_text("not a key")
    answer = app.test_client().get("/ca.pem")
    assert answer.status_code == 500
    body = answer.get_json()
    assert body["id"] == "internal_server_error" and "BERTH_DATA_DIR/ca" in body["message"]
