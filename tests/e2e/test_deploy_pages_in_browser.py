"""The Builds and Activity tabs in headless Chromium against a live Berth whose builder really builds:
a build's output appears on its page while it runs (no reload), the page shows the final status when
it ends, and a rollback is confirmed and done from the Activity tab."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.builds.conftest import BuildPlatform, build_platform
from tests.supervise.conftest import stack_root  # noqa: F401  (the session's built stack)

pytestmark = pytest.mark.slow
EMAIL, PASSWORD = "deployer@example.com", "a long enough password"
PACED = "paced"
STEPS = 15  # long enough that a loaded machine still sees it running


def write_paced_buildpack(root: Path) -> Path:
    """A buildpack whose compile writes a line a second: a build that is visibly running for a while."""
    buildpack = root / PACED
    (buildpack / "bin").mkdir(parents=True)
    scripts = {"detect": "#!/bin/bash\necho Paced\n",
               "compile": ("#!/bin/bash\necho '-----> Paced build started'\n"
                           f"for n in $(seq 1 {STEPS}); do echo \"       step $n <b>not bold</b>\"; sleep 1; done\n"
                           "echo '-----> Paced build done'\n"),
               "release": "#!/bin/bash\necho '--- {}'\n"}
    for name, text in scripts.items():
        (buildpack / "bin" / name).write_text(text)
        (buildpack / "bin" / name).chmod(0o755)
    return buildpack


@pytest.fixture(scope="module")
def site(stack_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuildPlatform, str]]:  # noqa: F811
    with build_platform(tmp_path_factory.mktemp("deploy-pages")) as built:
        write_paced_buildpack(built.buildpack_root)
        yield built, built.server.create_user(EMAIL, PASSWORD)


def test_follow_a_running_build_then_roll_back_from_activity(site: tuple[BuildPlatform, str], new_page: Any,
                                                             artifacts: Path) -> None:
    platform, key = site
    base = platform.server.url
    assert platform.server.api("POST", "/apps", key, json={"name": "paced-app"}).status_code == 201
    platform.key = key  # upload sources as this user
    source = platform.upload(files={"Procfile": "web: sleep 1000\n"})
    build = platform.server.api("POST", "/apps/paced-app/builds", key, json={
        "source_blob": {"url": source, "version": "v-paced"},
        "buildpacks": [{"url": str(platform.buildpack_root / PACED)}]}).json()

    page: Page = new_page()
    page.goto(base + "/login")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(base + "/dashboard/apps/paced-app/builds")
    expect(page.get_by_role("cell", name="pending")).to_be_visible()
    page.get_by_role("link", name=re.compile(build["id"][:8])).click()
    expect(page.locator("#build-status")).to_have_text("pending")

    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    output = page.locator("#build-output")
    expect(output).to_contain_text("step 2 <b>not bold</b>", timeout=30_000)  # text, never markup
    expect(output).to_contain_text("step 3", timeout=30_000)
    assert loads == [], "the output came by reloading the page, not by following the stream"
    assert page.locator("#build-output b").count() == 0
    page.screenshot(path=str(artifacts / "build-running.png"), full_page=True)

    expect(page.locator("#build-status")).to_have_text("succeeded", timeout=60_000)  # reloaded once it ended
    expect(output).to_contain_text("-----> Paced build done")
    expect(page.locator("dl.facts")).to_contain_text("v-paced")
    built_version = int(re.search(r"v(\d+)", page.locator("dl.facts dd").nth(2).inner_text()).group(1))
    page.screenshot(path=str(artifacts / "build-finished.png"), full_page=True)

    assert platform.server.api("PATCH", "/apps/paced-app/config-vars", key, json={"MODE": "new"}).status_code == 200
    page.get_by_role("link", name="Activity").click()
    page.get_by_role("link", name=f"Roll back to here (v{built_version})").click()
    expect(page.get_by_role("heading", name=f"Roll back to v{built_version}?")).to_be_visible()
    page.get_by_role("button", name=f"Roll back to v{built_version}").click()
    expect(page.get_by_role("status")).to_have_text(
        re.compile(rf"Rolled back to v{built_version}: v{built_version + 2} is now the current release\."))
    expect(page.get_by_role("row", name=re.compile(rf"v{built_version + 2}"))).to_contain_text(
        f"Rollback to v{built_version}")
    page.screenshot(path=str(artifacts / "activity-rolled-back.png"), full_page=True)
    newest = platform.server.api("GET", "/apps/paced-app/releases", key,
                                 headers={"Range": "version ..; order=desc,max=1"}).json()[0]
    assert newest["slug"] is not None and newest["description"] == f"Rollback to v{built_version}"
    assert "MODE" not in platform.server.api("GET", "/apps/paced-app/config-vars", key).json()
