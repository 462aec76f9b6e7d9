"""The embedded cluster serves TLS with a certificate from the installation's CA: what `sslmode=require`
(heroku pg:psql) and `verify-full` need, kept across restarts, and added to a cluster made before."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from berth import certificates
from berth.addons.postgres import embedded
from berth.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'control.sqlite3'}")
    yield settings
    embedded.stop(settings)


def tls_in_use(url: str, ca: Path) -> bool:
    with psycopg.connect(url, sslmode="verify-full", sslrootcert=str(ca), connect_timeout=10) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        return bool(row and row[0])


def test_the_cluster_serves_tls_verifiable_with_berths_ca(settings: Settings) -> None:
    url = embedded.ensure_embedded(settings)
    ca = certificates.installation_ca(settings.data_dir).cert_path
    assert tls_in_use(url, ca)
    key = embedded.root(settings) / "cluster" / "server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(psycopg.OperationalError):  # a foreign CA is not trusted
        other = certificates.load_or_create(settings.data_dir.parent / "other-ca").cert_path
        tls_in_use(url, other)


def test_a_restart_keeps_the_certificate(settings: Settings) -> None:
    url = embedded.ensure_embedded(settings)
    cert = embedded.root(settings) / "cluster" / "server.crt"
    issued = cert.read_text()
    embedded.stop(settings)
    assert embedded.ensure_embedded(settings) == url
    assert cert.read_text() == issued
    assert tls_in_use(url, certificates.installation_ca(settings.data_dir).cert_path)


def test_a_cluster_made_before_tls_gets_it_on_its_next_start(settings: Settings) -> None:
    url = embedded.ensure_embedded(settings)
    cluster_dir = embedded.root(settings) / "cluster"
    embedded.stop(settings)
    for name in ("server.crt", "server.key"):
        os.unlink(cluster_dir / name)
    (cluster_dir / "postgresql.auto.conf").write_text("")  # as initdb left it: ssl off
    embedded.ensure_embedded(settings)
    assert tls_in_use(url, certificates.installation_ca(settings.data_dir).cert_path)
