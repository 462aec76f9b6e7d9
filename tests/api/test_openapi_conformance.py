"""/openapi.json tells the truth: schemathesis (its CLI, a real subprocess) sends a bounded,
reproducible set of generated requests to a live Berth and checks every answer against the
document: no 5xx, only documented statuses, bodies of the documented shape, bad input refused
and good input accepted."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.live_server import ACCEPT, ROOT, LiveServer, clean_env, live_server

pytestmark = pytest.mark.slow

SEED = "20261207"
EXAMPLES_PER_OPERATION = "6"
CHECKS = ",".join(["not_a_server_error", "status_code_conformance", "content_type_conformance",
                   "response_schema_conformance", "negative_data_rejection",
                   "positive_data_acceptance"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # A rate limit that a few hundred requests cannot reach: 429 is not what is tested here.
    with live_server(tmp_path_factory.mktemp("schemathesis"), workers=2, threads=4,
                     RATE_LIMIT_PER_HOUR="1000000") as live:
        yield live


# Requests reach real resources (an app with a config var, a release, a collaborator) instead of
# stopping at 404; renaming or destroying goes to an app of its own, so the others stay.
CONFIG = """
[parameters]
"path.app_ref" = "fuzzed-app"
"path.ref" = "1"

[[operations]]
include-path = "/apps/{app_ref}"
include-method-regex = "^(PATCH|DELETE)$"
parameters = { "path.app_ref" = "renamed-or-destroyed" }

[[operations]]
include-path = "/apps/{app_ref}/collaborators/{ref}"
parameters = { "path.ref" = "helper@example.com" }

[[operations]]
include-path = ["/users/{ref}", "/users/{ref}/apps"]
parameters = { "path.ref" = "fuzz@example.com" }

# Well-formed bodies these refuse for what they name, not for their shape (a region or stack this
# Berth does not run, a drain URL that is not a URL, a manifest that breaks the partner rules):
# 422, as Heroku answers; a JSON schema cannot list what exists.
[[operations]]
include-name = ["POST /apps", "PATCH /apps/{app_ref}", "POST /apps/{app_ref}/log-drains",
                "POST /api/v3/addons/{slug}/manifests"]
checks.positive_data_acceptance.expected-statuses = ["2XX", 401, 403, 404, 409, 422]
"""


def test_the_api_answers_as_its_openapi_document_says(server: LiveServer, tmp_path: Path) -> None:
    key = server.create_user("fuzz@example.com")
    server.create_user("helper@example.com")
    for app in ("fuzzed-app", "renamed-or-destroyed"):
        assert server.api("POST", "/apps", key, json={"name": app}).status_code == 201
    assert server.api("PATCH", "/apps/fuzzed-app/config-vars", key, json={"GREETING": "hi"}).ok
    assert server.api("POST", "/apps/fuzzed-app/collaborators", key,
                      json={"user": "helper@example.com"}).status_code == 201
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
         "--url", server.url, "--seed", SEED, "--max-examples", EXAMPLES_PER_OPERATION,
         "--phases", "examples,coverage,fuzzing", "--checks", CHECKS, "--workers", "1",
         "--request-timeout", "20", "--suppress-health-check", "all", "--no-color",
         "-H", f"Authorization: Bearer {key}", "-H", f"Accept: {ACCEPT}",
         # Signing the caller out mid-run would turn every later answer into a 401.
         "--exclude-path-regex", r"^/oauth/authorizations/\{ref\}",
         ],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-3000:]
