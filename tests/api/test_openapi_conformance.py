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

from berth.addons.postgres.cluster import LocalPostgres
from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.live_server import ACCEPT, clean_env

pytestmark = pytest.mark.slow

SEED = "20261207"
EXAMPLES_PER_OPERATION = "6"
CHECKS = ",".join(["not_a_server_error", "status_code_conformance", "content_type_conformance",
                   "response_schema_conformance", "negative_data_rejection",
                   "positive_data_acceptance"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory,
             postgres_server: LocalPostgres) -> Iterator[BuiltinPlatform]:
    """With the first-party add-ons, so add-on, attachment and catalogue routes reach real ones.
    A rate limit that a few thousand requests cannot reach: 429 is not what is tested here."""
    with builtin_platform(tmp_path_factory.mktemp("schemathesis"), postgres_server.admin_url(),
                          "fuzz@example.com", RATE_LIMIT_PER_HOUR="1000000") as running:
        yield running


# Requests reach real resources (an app with a config var, a release, a collaborator) instead of
# stopping at 404; renaming or destroying goes to an app of its own, so the others stay.
CONFIG = """
[parameters]
"path.app_ref" = "fuzzed-app"
"path.addon_ref" = "fuzzed-cache"
"path.service_ref" = "redis"
"path.plan_ref" = "mini"
"path.ref" = "1"

[[operations]]
include-path = "/apps/{app_ref}"
include-method-regex = "^(PATCH|DELETE)$"
parameters = { "path.app_ref" = "renamed-or-destroyed" }

[[operations]]
include-path = "/apps/{app_ref}/addons/{addon_ref}"
include-method-regex = "^(PATCH|DELETE)$"
parameters = { "path.addon_ref" = "renamed-or-destroyed-cache" }

[[operations]]
include-path = "/plans/{plan_ref}"
parameters = { "path.plan_ref" = "redis:mini" }

[[operations]]
include-path = "/apps/{app_ref}/addon-attachments/{ref}"
parameters = { "path.ref" = "REDIS" }

[[operations]]
include-path = "/apps/{app_ref}/collaborators/{ref}"
parameters = { "path.ref" = "helper@example.com" }

[[operations]]
include-path = ["/users/{ref}", "/users/{ref}/apps"]
parameters = { "path.ref" = "fuzz@example.com" }

# Well-formed bodies these refuse for what they name, not for their shape (a region or stack this
# Berth does not run, a drain URL that is not a URL, a manifest that breaks the partner rules, a
# buildpack that is neither a built-in nor a URL, a build's or app setup's source URL Berth may not fetch,
# a one-off dyno's size that is no dyno size or env name that is no variable name, a domain another
# app has or one under the apps domain):
# 422, as Heroku answers; a JSON schema cannot list what exists.
[[operations]]
include-name = ["POST /apps", "PATCH /apps/{app_ref}", "POST /apps/{app_ref}/log-drains",
                "POST /api/v3/addons/{slug}/manifests", "POST /apps/{app_ref}/slugs",
                "POST /apps/{app_ref}/releases", "PUT /apps/{app_ref}/buildpack-installations",
                "POST /apps/{app_ref}/builds", "POST /app-setups", "POST /apps/{app_ref}/dynos",
                "POST /apps/{app_ref}/domains"]
checks.positive_data_acceptance.expected-statuses = ["2XX", 401, 403, 404, 409, 422]
"""


def test_the_api_answers_as_its_openapi_document_says(platform: BuiltinPlatform, tmp_path: Path) -> None:
    server, key = platform.server, platform.key
    server.create_user("helper@example.com")
    for app in ("fuzzed-app", "renamed-or-destroyed"):
        assert platform.call("POST", "/apps", name=app).status_code == 201
    assert platform.call("PATCH", "/apps/fuzzed-app/config-vars", GREETING="hi").ok
    assert platform.call("POST", "/apps/fuzzed-app/collaborators", user="helper@example.com").status_code == 201
    for name in ("fuzzed-cache", "renamed-or-destroyed-cache"):
        assert platform.provision("fuzzed-app", "heroku-redis:mini", name=name)["state"] == "provisioned"
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
    print(done.stdout[-4000:])  # the summary, for `pytest -s`
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-3000:]
    # The pinned resources lived through the run, so the requests reached them.
    assert platform.call("GET", "/apps/fuzzed-app/addons/fuzzed-cache").json()["state"] == "provisioned"
