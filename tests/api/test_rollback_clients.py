"""Both real clients roll back against a live Berth: the official Heroku CLI's `releases:rollback`
(with and without a version) and heroku3's `app.rollback()`, after slugs were uploaded and released
over HTTP exactly as a client outside Berth would."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import requests

from tests.api.test_slugs import slug_tarball
from tests.heroku_cli import HerokuCLI, heroku_cli
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("rollback")) as live:
        yield live


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return server.create_user("rollback@example.com")


def deploy(server: LiveServer, key: str, app: str, marker: str) -> dict[str, Any]:
    """POST a slug, PUT its tarball to the blob URL with no key (as curl would), release it."""
    slug = server.api("POST", f"/apps/{app}/slugs", key, json={"process_types": {"web": "x"}, "commit": marker})
    assert slug.status_code == 201, slug.text
    blob = slug.json()["blob"]
    assert blob["method"] == "PUT" and blob["url"].startswith(server.url + "/")
    put = requests.put(blob["url"], data=slug_tarball(marker), headers={"Content-Type": ""}, timeout=30)
    assert put.status_code == 200, put.text
    released = server.api("POST", f"/apps/{app}/releases", key, json={"slug": slug.json()["id"]})
    assert released.status_code == 201, released.text
    return slug.json()


def newest(server: LiveServer, key: str, app: str) -> dict[str, Any]:
    return server.api("GET", f"/apps/{app}/releases", key, headers={"Range": "version ..; order=desc,max=1"}).json()[0]


def set_config(server: LiveServer, key: str, app: str, **values: str) -> None:
    assert server.api("PATCH", f"/apps/{app}/config-vars", key, json=values).status_code == 200


def test_heroku_cli_rolls_back_to_the_previous_release_and_to_a_named_one(
        server: LiveServer, key: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    cli: HerokuCLI = heroku_cli(server.url, key, tmp_path_factory.mktemp("home"))
    assert server.api("POST", "/apps", key, json={"name": "cli-rollback"}).status_code == 201
    set_config(server, key, "cli-rollback", MODE="one")
    first = deploy(server, key, "cli-rollback", "aaaaaaa1")       # v3: slug 1, MODE=one
    set_config(server, key, "cli-rollback", MODE="two")           # v4: slug 1, MODE=two
    deploy(server, key, "cli-rollback", "bbbbbbb2")                # v5: slug 2, MODE=two
    assert newest(server, key, "cli-rollback")["version"] == 5

    done = cli.run("releases:rollback", "-a", "cli-rollback")
    assert done.returncode == 0, done.stderr
    assert "Rolling back" in done.stderr and "v4" in done.stderr and "done, v6" in done.stderr
    v6 = newest(server, key, "cli-rollback")
    assert v6["description"] == "Rollback to v4" and v6["slug"] == {"id": first["id"]} and v6["current"]

    cli.ok("releases:rollback", "v3", "-a", "cli-rollback")
    v7 = newest(server, key, "cli-rollback")
    assert v7["description"] == "Rollback to v3" and v7["slug"] == {"id": first["id"]}
    assert server.api("GET", "/apps/cli-rollback/config-vars", key).json() == {"MODE": "one"}
    assert "Rollback to v3" in cli.ok("releases", "-a", "cli-rollback")

    missing = cli.run("releases:rollback", "v99", "-a", "cli-rollback")
    assert missing.returncode != 0 and "Couldn't find that release" in missing.stderr
    assert newest(server, key, "cli-rollback")["version"] == 7


def test_heroku3_rolls_back_an_app(server: LiveServer, key: str) -> None:
    import heroku3
    saved = heroku3.api.HEROKU_URL
    heroku3.api.HEROKU_URL = server.url
    try:
        client = heroku3.from_key(key)
    finally:
        heroku3.api.HEROKU_URL = saved
    app = client.create_app(name="h3-rollback")
    set_config(server, key, "h3-rollback", MODE="one")
    first = deploy(server, key, "h3-rollback", "ccccccc3")
    set_config(server, key, "h3-rollback", MODE="two", EXTRA="x")
    deploy(server, key, "h3-rollback", "ddddddd4")
    target = next(r for r in app.releases() if r.description == "Deploy ccccccc")
    rolled = app.rollback(target.id)
    assert rolled.description == f"Rollback to v{target.version}" and rolled.slug.id == first["id"]
    assert app.config().to_dict() == {"MODE": "one"}
