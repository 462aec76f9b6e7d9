"""The builds plugin's upload against a live Berth (gunicorn): `heroku builds:create` POSTs /sources
and PUTs the tarball to put_url with the CLI's own HTTP library (http-call), `Content-Type: ''`,
`Content-Length` and no Authorization. The plugin itself is not part of the CLI installed in
.cache (`heroku builds:create` is not found there), so its upload is replayed line for line."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.heroku_cli import BINARY
from tests.live_server import LiveServer, clean_env, live_server

pytestmark = pytest.mark.slow
NODE_MODULES = BINARY.parents[1]
# As @heroku-cli/plugin-builds' uploadDirToSource does it, with the same library.
PLUGIN_UPLOAD = """
const HTTP = require('http-call').default
const fs = require('node:fs')
const [putUrl, file] = process.argv.slice(1)
HTTP.put(putUrl, {body: fs.createReadStream(file),
                  headers: {'Content-Type': '', 'Content-Length': fs.statSync(file).size}})
  .then(r => console.log(JSON.stringify({status: r.statusCode})))
  .catch(e => { console.log(JSON.stringify({status: e.statusCode, body: e.body})); process.exit(1) })
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("sources"), SOURCE_MAX_BYTES=str(8 * 1024 * 1024)) as live:
        yield live


def plugin_put(put_url: str, file: Path) -> tuple[int, subprocess.CompletedProcess[str]]:
    if not (NODE_MODULES / "http-call").is_dir():
        pytest.fail(f"the Heroku CLI's http-call is not at {NODE_MODULES}: run `make setup`")
    done = subprocess.run(["node", "-e", PLUGIN_UPLOAD, put_url, str(file)], capture_output=True, text=True,
                          timeout=120, env={**clean_env(), "NODE_PATH": str(NODE_MODULES)})
    return json.loads(done.stdout.strip().splitlines()[-1])["status"], done


def test_the_builds_plugins_upload_is_stored_and_served_back(server: LiveServer, tmp_path: Path) -> None:
    key = server.create_user("uploader@example.com")
    created = server.api("POST", "/sources", key)
    assert created.status_code == 201, created.text
    blob = created.json()["source_blob"]
    tarball = tmp_path / "source.tgz"
    tarball.write_bytes(os.urandom(5 * 1024 * 1024))  # over the 1 MiB API body limit
    status, done = plugin_put(blob["put_url"], tarball)
    assert status == 200, done.stdout + done.stderr
    got = requests.get(blob["get_url"], timeout=30)
    assert got.status_code == 200 and got.content == tarball.read_bytes()


def test_an_upload_over_the_limit_is_refused_with_a_message(server: LiveServer, tmp_path: Path) -> None:
    key = server.create_user("big-uploader@example.com")
    blob = server.api("POST", "/sources", key).json()["source_blob"]
    tarball = tmp_path / "huge.tgz"
    with tarball.open("wb") as out:
        out.truncate(9 * 1024 * 1024)
    status, done = plugin_put(blob["put_url"], tarball)
    assert status == 413, done.stdout + done.stderr
    assert "larger than the limit of 8388608 bytes" in done.stdout
    assert requests.get(blob["get_url"], timeout=30).status_code == 404
