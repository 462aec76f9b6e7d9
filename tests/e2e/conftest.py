"""End-to-end pages in a real browser: Debian's headless chromium driven by playwright (no browser
download), against a live Berth (gunicorn, broker worker, first-party add-ons on the session's
PostgreSQL server). Screenshots go to `test-artifacts/screenshots/` (BERTH_TEST_ARTIFACTS to move it).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from berth.addons.postgres.cluster import LocalPostgres
from tests.builtin_platform import BuiltinPlatform, builtin_platform
from tests.live_server import ROOT

PHONE = {"width": 375, "height": 812}


def chromium_path() -> str:
    found = os.environ.get("BERTH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        pytest.fail("chromium is not installed: `make setup` installs Debian's chromium package")
    return found


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("BERTH_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, postgres_server: LocalPostgres) -> Iterator[BuiltinPlatform]:
    base = tmp_path_factory.mktemp("berth-e2e")
    with builtin_platform(base, postgres_server.admin_url(), "operator@example.com") as live:
        yield live


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium_path(), headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(chromium: object) -> Iterator[object]:
    """A page in a fresh browser context (its own cookies), desktop width unless asked."""
    contexts = []

    def make(*, phone: bool = False, javascript: bool = True) -> object:
        context = chromium.new_context(viewport=PHONE if phone else {"width": 1280, "height": 900},  # type: ignore[attr-defined]
                                       java_script_enabled=javascript)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
