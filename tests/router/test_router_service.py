"""The router service on the control plane: apps, custom domains and maintenance reach nginx
within a round; a killed nginx comes back; router lines land in the app's log."""
from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import select

from berth.platform.logs.models import LogLine
from berth.platform.router.nginx_config import RouterLayout
from berth.platform.router.service import RouterService
from berth.supervise.ports import free_loopback_port
from berth.supervise.readiness import wait_until
from tests.router.test_nginx_router import get

pytestmark = pytest.mark.slow


def test_apps_domains_and_maintenance_are_routed_and_nginx_is_kept_up(app, api, alice, settings,
                                                                      tmp_path) -> None:
    database = app.extensions["berth.database"]
    layout = RouterLayout(prefix=tmp_path / "router", listen_host="127.0.0.1", port=free_loopback_port(),
                          tls_port=free_loopback_port())
    service = RouterService(settings, database, layout)
    try:
        api.post("/apps", alice, json={"name": "routed"})
        api.post("/apps/routed/domains", alice, json={"hostname": "www.routed-example.org"})
        service.round()
        router = service.router
        for host in ("routed.localhost", "www.routed-example.org"):
            status, _, body = get(router, host)
            assert status == 503 and b"Application error" in body  # H14: no web dynos yet
        assert get(router, "nobody.localhost")[0] == 404

        api.patch("/apps/routed", alice, json={"maintenance": True})
        service.round()
        assert b"Offline for Maintenance" in get(router, "www.routed-example.org")[2]

        pid = router.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not router.running(), 5)
        service.round()  # the killed master's workers still held the ports: they are ended first
        assert router.running() and b"Offline for Maintenance" in get(router, "routed.localhost")[2]
        service.round()
        with database.session(write=False) as session:
            messages = list(session.scalars(select(LogLine.message).where(LogLine.process == "router")))
        assert any(m.startswith('at=error code=H14 desc="No web processes running"') for m in messages)
        assert any(m.startswith('at=info code=H80 desc="Maintenance mode"') for m in messages)
    finally:
        service.router.stop()
