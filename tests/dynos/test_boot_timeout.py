"""R10: a web dyno that has not bound its $PORT within its boot timeout is killed and recorded crashed,
with Heroku's lines; one that binds in time is up and stays up."""
from __future__ import annotations

import json
import time

import pytest

from berth.config import load_settings
from berth.platform.dynos.backend import DynoError, DynoSpec

from .conftest import eventually
from .test_lifecycle import collect

pytestmark = pytest.mark.slow


def test_a_web_dyno_that_never_binds_its_port_gets_r10_and_crashes(backend, checksum, data_dir) -> None:
    status = backend.start(DynoSpec(app_id="boot", name="web.1", slug_checksum=checksum, web=True,
                                    command="echo booting; sleep 60", boot_timeout=1.5))
    meta = json.loads((data_dir / "dynos" / status.id / "meta.json").read_text())
    assert meta["boot_timeout"] == 1.5
    eventually(lambda: backend.status(status.id).state == "crashed", timeout=20, what="the R10 crash")
    crashed = backend.status(status.id)
    assert (crashed.state, crashed.exit_status) == ("crashed", 137)
    heroku = [line.text for line in collect(backend, status.id) if line.source == "heroku"]
    assert heroku[-4:] == [
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 1.5 seconds of launch",
        "Stopping process with SIGKILL", "Process exited with status 137", "State changed from starting to crashed"]


def test_a_web_dyno_that_binds_in_time_is_up_and_stays_up(backend, checksum) -> None:
    status = backend.start(DynoSpec(app_id="boot", name="web.2", slug_checksum=checksum, web=True,
                                    command='exec python3 -m http.server "$PORT"', boot_timeout=8))
    eventually(lambda: backend.status(status.id).state == "up", what="web.2 up")
    time.sleep(9)  # past the boot timeout: binding once is enough
    assert backend.status(status.id).state == "up"
    backend.stop(status.id, grace=2)


def test_a_worker_has_no_boot_timeout(backend, checksum) -> None:
    status = backend.start(DynoSpec(app_id="boot", name="worker.1", slug_checksum=checksum,
                                    command="sleep 30", boot_timeout=0.5))
    time.sleep(2)
    assert backend.status(status.id).state == "up"
    backend.stop(status.id, grace=1)


def test_a_boot_timeout_must_be_positive() -> None:
    with pytest.raises(DynoError, match="boot timeout"):
        DynoSpec(app_id="a", name="web.1", slug_checksum="0" * 64, command="true", boot_timeout=0)


def test_the_boot_timeout_setting_defaults_to_60_and_refuses_nonsense(tmp_path) -> None:
    base = {"BERTH_DATA_DIR": str(tmp_path)}
    assert load_settings(base).dyno_boot_timeout_seconds == 60.0
    assert load_settings({**base, "BERTH_DYNO_BOOT_TIMEOUT_SECONDS": "90"}).dyno_boot_timeout_seconds == 90.0
    for bad in ("soon", "0", "-5"):
        with pytest.raises(ValueError, match="BERTH_DYNO_BOOT_TIMEOUT_SECONDS"):
            load_settings({**base, "BERTH_DYNO_BOOT_TIMEOUT_SECONDS": bad})
