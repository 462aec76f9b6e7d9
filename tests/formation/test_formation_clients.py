"""The formation through unmodified clients against one live Berth: the official Heroku CLI's
ps:scale, ps:type and ps:resize, and heroku3's process_formation, scale, resize and batch scaling."""
from __future__ import annotations

import uuid
from functools import partial
from typing import Iterator

import heroku3
import pytest
import requests

from tests.formation.deploying import deploy_over_http
from tests.heroku3_client import heroku3_client
from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("formation-clients")) as live:
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.create_user("scaler@example.com")


@pytest.fixture
def deployed(server: LiveServer, key: str) -> Iterator[str]:
    name = "f" + uuid.uuid4().hex[:12]
    assert server.api("POST", "/apps", key, json={"name": name}).status_code == 201
    deploy_over_http(partial(_call, server, key), name)
    yield name
    server.api("DELETE", f"/apps/{name}", key)


def _call(server: LiveServer, key: str, method: str, path: str, **kwargs: object) -> requests.Response:
    return server.api(method, path, key, **kwargs)  # type: ignore[arg-type]


def _formation(server: LiveServer, key: str, app: str) -> dict[str, tuple[int, str]]:
    return {e["type"]: (e["quantity"], e["size"]) for e in server.api("GET", f"/apps/{app}/formation", key).json()}


@pytest.fixture(scope="module")
def cli(server: LiveServer, key: str, tmp_path_factory: pytest.TempPathFactory) -> HerokuCLI:
    return heroku_cli(server.url, key, tmp_path_factory.mktemp("home"))


def test_heroku_ps_scale_shows_and_scales(cli: HerokuCLI, server: LiveServer, key: str, deployed: str) -> None:
    assert cli.ok("ps:scale", "-a", deployed).strip() == "web=1:Standard-1X worker=0:Standard-1X"
    scaled = cli.run("ps:scale", "web=2", "worker+1:Standard-2X", "-a", deployed)
    assert scaled.returncode == 0, scaled.stderr
    assert "web at 2:Standard-1X" in scaled.stderr + scaled.stdout
    assert _formation(server, key, deployed) == {"web": (2, "Standard-1X"), "worker": (1, "Standard-2X")}
    refused = cli.run("ps:scale", "web=101", "-a", deployed)
    assert refused.returncode != 0 and "Cannot update to more than 100" in refused.stderr
    unknown = cli.run("ps:scale", "clock=1", "-a", deployed)
    assert unknown.returncode != 0 and "clock" in unknown.stderr
    assert _formation(server, key, deployed)["web"] == (2, "Standard-1X")


def test_heroku_ps_type_and_ps_resize(cli: HerokuCLI, server: LiveServer, key: str, deployed: str) -> None:
    typed = cli.run("ps:type", "standard-2x", "-a", deployed)
    assert typed.returncode == 0, typed.stderr
    assert "Standard-2X" in typed.stdout and "Process Types" in typed.stdout
    assert _formation(server, key, deployed) == {"web": (1, "Standard-2X"), "worker": (0, "Standard-2X")}
    assert cli.run("ps:resize", "worker=performance-m", "-a", deployed).returncode == 0
    assert _formation(server, key, deployed)["worker"] == (0, "Performance-M")
    bad = cli.run("ps:type", "web=huge", "-a", deployed)
    assert bad.returncode != 0 and "No such dyno size" in bad.stderr
    assert _formation(server, key, deployed)["web"] == (1, "Standard-2X")


@pytest.fixture
def h(server: LiveServer, key: str) -> heroku3.api.Heroku:
    return heroku3_client(server.url, key)


def test_heroku3_formation_scale_resize_and_batch(h: heroku3.api.Heroku, server: LiveServer, key: str,
                                                  deployed: str) -> None:
    app = h.apps()[deployed]
    formation = {process.type: process for process in app.process_formation()}
    assert set(formation) == {"web", "worker"}
    assert (formation["web"].quantity, formation["web"].size, formation["web"].command) == \
        (1, "Standard-1X", "gunicorn app:app")
    assert formation["worker"].scale(3).quantity == 3
    assert formation["worker"].resize("standard-2x").size == "Standard-2X"
    app.batch_scale_formation_processes({"web": 2, "worker": 0})
    assert _formation(server, key, deployed) == {"web": (2, "Standard-1X"), "worker": (0, "Standard-2X")}
    with pytest.raises(requests.HTTPError):
        formation["web"].scale(-1)
    assert _formation(server, key, deployed)["web"] == (2, "Standard-1X")
