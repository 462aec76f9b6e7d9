"""Pages carry a Content-Security-Policy that allows only Berth's own scripts and stylesheet,
refuse to be framed, and keep their URLs to themselves; every answer says nosniff."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Api, User
from tests.web.conftest import Browser

TEMPLATES = Path(__file__).resolve().parents[2] / "berth" / "templates"


def policy(response: object) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy", "")  # type: ignore[attr-defined]
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {d[0]: (d[1] if len(d) > 1 else "") for d in directives}


def assert_page_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    found = policy(response)
    assert found.get("default-src") == "'self'", found
    assert found.get("script-src") == "'self'" and found.get("style-src") == "'self'", found
    assert found.get("frame-ancestors") == "'none'" and found.get("object-src") == "'none'", found
    assert found.get("base-uri") == "'none'" and found.get("form-action") == "'self'", found
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/", "/login", "/signup", "/marketplace", "/logout", "/dashboard/nope"])
def test_signed_out_pages_and_error_pages_carry_the_policy(browser: Browser, path: str) -> None:
    assert_page_headers(browser.get(path))


def test_signed_in_pages_and_refused_forms_carry_the_policy(signed_in: Browser, browser: Browser,
                                                            carol: User) -> None:
    for path in ("/dashboard", "/dashboard/account", "/partners", "/partners/new"):
        answer = signed_in.get(path)
        assert answer.status_code == 200, path
        assert_page_headers(answer)
    assert_page_headers(signed_in.submit("/dashboard/apps", {"name": "Bad Name!"}))  # 422 page
    browser.get("/login")
    assert_page_headers(browser.submit("/login", {"email": carol.email, "password": "wrong"}))


def test_api_answers_say_nosniff_too(api: Api, alice: User) -> None:
    for response in (api.get("/account", alice), api.get("/apps"), api.get("/no-such-endpoint")):
        assert response.mimetype == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


INLINE = [re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), re.compile(r"<style", re.I),
          re.compile(r"\sstyle\s*=", re.I), re.compile(r"\son[a-z]+\s*=", re.I),
          re.compile(r"javascript:", re.I)]


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_templates_have_no_inline_script_or_style_the_policy_would_block(template: Path) -> None:
    source = template.read_text()
    for pattern in INLINE:
        assert not pattern.search(source), (template, pattern.pattern)
