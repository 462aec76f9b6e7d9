"""`make run` (`python -m berth.serve`) serves the API on BERTH_PORT and, over TLS with a certificate
from the installation CA, on BERTH_TLS_PORT."""
from __future__ import annotations

import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography import x509

from berth import tls_listener
from berth.config import Settings
from tests.live_server import ROOT, clean_env, free_port, stop, wait_for_tls, wait_until_answering

pytestmark = pytest.mark.slow


def test_make_run_serves_the_api_over_tls_too(tmp_path: Path) -> None:
    port, tls_port = free_port(), free_port()
    env = {**clean_env(), "BERTH_DATA_DIR": str(tmp_path / "data"), "BERTH_HOST": "127.0.0.1",
           "BERTH_PORT": str(port), "BERTH_TLS_PORT": str(tls_port), "BERTH_BUILTIN_ADDONS": "0",
           "BERTH_WEB_WORKERS": "1", "BERTH_WEB_THREADS": "2",
           "BERTH_ROUTER_PORT": str(free_port()), "BERTH_ROUTER_TLS_PORT": str(free_port()),
           "BERTH_RENDEZVOUS_PORT": str(free_port())}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "berth.serve"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        ca = tmp_path / "data" / "ca" / "ca.pem"
        wait_until_answering(f"http://127.0.0.1:{port}/openapi.json", process, log)
        wait_for_tls(tls_port, process, log)
        answer = requests.get(f"https://127.0.0.1:{tls_port}/ca.pem", verify=str(ca), timeout=10)
        assert answer.status_code == 200 and answer.text == ca.read_text()
        assert requests.get(f"https://localhost:{tls_port}/openapi.json", verify=str(ca), timeout=10).ok
        pem = ssl.get_server_certificate(("127.0.0.1", tls_port))
        sans = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
    finally:
        stop(process)


def test_the_certificate_is_issued_again_when_its_names_change(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://")
    cert, key = tls_listener.ensure_certificate(settings)
    first = cert.read_text()
    assert key.stat().st_mode & 0o077 == 0
    assert tls_listener.ensure_certificate(settings)[0].read_text() == first  # kept while it fits
    renamed = settings.with_overrides(tls_names=("berth.example.com", "10.0.0.7"))
    second = tls_listener.ensure_certificate(renamed)[0].read_text()
    assert second != first
    leaf = x509.load_pem_x509_certificate(second.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "berth.example.com" in sans.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("10.0.0.7") in sans.get_values_for_type(x509.IPAddress)
