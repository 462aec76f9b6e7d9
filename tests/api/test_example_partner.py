"""The example partner the README's tour registers (examples/acme-cache): it runs, writes its
manifest with fresh secrets, passes the partner conformance suite and registers with Berth."""
from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.live_server import ROOT, clean_env, free_port, stop, wait_until_answering

pytestmark = pytest.mark.slow
LAUNCHER = ROOT / "examples" / "acme-cache" / "partner.py"


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The launcher running in `tmp_path`, as a partner would run it there."""
    port = free_port()
    log = tmp_path / "partner.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(LAUNCHER), f"--port={port}",
                                    "--manifest=acme-cache.json"], cwd=tmp_path, env=clean_env(),
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/_admin/health", process, log, timeout=20,
                             what="example partner")
        yield tmp_path
    finally:
        stop(process, timeout=10)


def test_the_example_partner_passes_conformance_and_registers(workdir: Path) -> None:
    manifest_file = workdir / "acme-cache.json"
    assert stat.S_IMODE(manifest_file.stat().st_mode) == 0o600
    manifest = json.loads(manifest_file.read_text())
    assert manifest["id"] == "acme-cache" and len(manifest["api"]["password"]) >= 24
    assert "Register it with" in (workdir / "partner.log").read_text()

    env = clean_env()
    conformance = subprocess.run([sys.executable, "-m", "berth.broker.partner_api.conformance",
                                  str(manifest_file), "--plan", "pro", "--other-plan", "enterprise"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert conformance.returncode == 0, conformance.stdout + conformance.stderr

    register = [sys.executable, "-m", "berth.admin", "register-addon", str(manifest_file)]
    berth_env = {**env, "BERTH_DATA_DIR": str(workdir / "var")}
    # The example listens on loopback: Berth calls it only where the operator allows private targets.
    refused = subprocess.run(register, cwd=ROOT, env=berth_env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "BERTH_ALLOW_PRIVATE_TARGETS=1" in refused.stderr
    registered = subprocess.run(register, cwd=ROOT, env={**berth_env, "BERTH_ALLOW_PRIVATE_TARGETS": "1"},
                                capture_output=True, text=True, timeout=120)
    assert registered.returncode == 0, registered.stderr
    assert "Registered acme-cache with plans test, pro, enterprise" in registered.stderr
    assert manifest["api"]["password"] not in registered.stderr + registered.stdout
