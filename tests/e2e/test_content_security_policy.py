"""The pages' Content-Security-Policy in a real browser: Berth's own stylesheet and scripts run
with no violation reported, and another site cannot frame a page (clickjacking)."""
from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.builtin_platform import BuiltinPlatform
from tests.e2e.test_pages import create_app, sign_up

pytestmark = pytest.mark.slow


def watch_console(page: Page) -> list[str]:
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    page.on("pageerror", lambda error: said.append(str(error)))
    return said


def test_pages_run_under_the_policy_without_violations(platform: BuiltinPlatform, new_page: Any) -> None:
    base = platform.server.url
    page: Page = new_page()
    said = watch_console(page)
    violations: list[str] = []
    page.expose_function("reportViolation", lambda text: violations.append(text))
    page.add_init_script("document.addEventListener('securitypolicyviolation',"
                         " e => window.reportViolation(e.violatedDirective + ' ' + e.blockedURI));")
    for path in ("/", "/marketplace", "/login", "/signup"):
        answer = page.goto(base + path)
        assert answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        # The stylesheet applied: the header is laid out as berth.css says, not as a bare page.
        assert page.eval_on_selector(".site-header", "e => getComputedStyle(e).display") == "flex", path
    sign_up(page, base, f"csp-{secrets.token_hex(3)}@example.com")
    create_app(page, base, "csp-app")
    for path in ("/dashboard", "/dashboard/apps/csp-app", "/dashboard/account", "/partners/new"):
        page.goto(base + path)
    assert violations == [] and not [s for s in said if "Content Security Policy" in s], (violations, said)


def test_another_site_cannot_frame_a_page(platform: BuiltinPlatform, new_page: Any) -> None:
    base = platform.server.url
    page: Page = new_page()
    said = watch_console(page)
    page.set_content(f'<iframe id="victim" src="{base}/login" width="600" height="400"></iframe>')
    deadline = time.monotonic() + 20
    while not any("frame" in s and ("ancestors" in s or "X-Frame-Options" in s) for s in said):
        assert time.monotonic() < deadline, said
        page.wait_for_timeout(100)
    framed = page.frame_locator("#victim")
    expect(framed.get_by_role("button", name="Sign in")).to_have_count(0)
