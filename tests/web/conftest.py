"""Fixtures for the pages, driven through Flask's test client like a browser without scripts:
a cookie jar, and the CSRF token read from each page's forms."""
from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.conftest import Api, User

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One visitor: its own cookies; `submit` posts a form with the token the last page gave."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()
        self.csrf: str | None = None

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        response = self.client.get(path, **kwargs)
        self._remember_token(response)
        return response

    def submit(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
               follow: bool = False) -> TestResponse:
        form = dict(data or {})
        if csrf:
            assert self.csrf, "load a page with a form first"
            form.setdefault("csrf_token", self.csrf)
        response = self.client.post(path, data=form, follow_redirects=follow)
        self._remember_token(response)
        return response

    def sign_in(self, user: User) -> None:
        self.get("/login")
        answer = self.submit("/login", {"email": user.email, "password": user.password})
        assert answer.status_code == 303, answer.get_data(as_text=True)
        self.get("/dashboard")  # a fresh token: signing in starts a new session

    def _remember_token(self, response: TestResponse) -> None:
        if response.mimetype == "text/html":
            found = CSRF_FIELD.search(response.get_data(as_text=True))
            if found:
                self.csrf = found.group(1)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def browser(app: Flask) -> Browser:
    return Browser(app)


@pytest.fixture
def carol(api: Api) -> User:
    """A user with a password (argon2: only where a test signs in through the form)."""
    return api.make_user("carol@example.com", "correct horse battery")


@pytest.fixture
def signed_in(app: Flask, alice: User) -> Browser:
    """A browser signed in as alice (the `alice` fixture has a password)."""
    visitor = Browser(app)
    visitor.sign_in(alice)
    return visitor
