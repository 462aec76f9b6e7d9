"""A build past BERTH_BUILD_TIMEOUT_SECONDS is stopped and fails saying so; the app keeps its release."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from tests.builds.conftest import SLOW_BUILDPACK, BuildPlatform, Follower, build_platform
from tests.supervise.conftest import stack_root  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_platform(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildPlatform]:  # noqa: F811
    with build_platform(tmp_path_factory.mktemp("build-limit"), BUILD_TIMEOUT_SECONDS="5") as built:
        yield built


def test_a_build_over_the_time_limit_fails_with_a_clear_message(quick_platform: BuildPlatform) -> None:
    platform = quick_platform
    platform.make_app("build-too-slow")
    before = platform.releases("build-too-slow")
    url = platform.upload(files={"Procfile": "web: true\n"})
    build = platform.call("POST", "/apps/build-too-slow/builds", {
        "source_blob": {"url": url}, "buildpacks": [{"url": str(platform.buildpack_root / SLOW_BUILDPACK)}]}).json()
    follower = Follower(build["output_stream_url"])
    follower.join(timeout=90)
    output = follower.text()
    finished = platform.wait_for("build-too-slow", build["id"], timeout=10)
    assert finished["status"] == "failed"
    assert "Build timed out after 5 seconds" in output and "Build timed out" in finished["failure_message"]
    assert platform.releases("build-too-slow") == before
