"""Response headers that keep browsers from turning Berth's answers against its users.

Pages get a Content-Security-Policy that allows only Berth's own scripts and stylesheet
(templates carry no inline script or style), may not be framed (clickjacking), and send no
URL to other sites in Referer. Every answer, JSON included, says nosniff.
"""
from __future__ import annotations

from flask import Flask, Response, g

PAGE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def allow_form_posts_off_site() -> None:
    """For the one page whose form goes to another site (an add-on's SSO): browsers also hold
    the partner's redirects after the post to form-action, and those may go anywhere."""
    g.form_posts_off_site = True


def _content_security_policy() -> str:
    directives = dict(PAGE_POLICY)
    if g.get("form_posts_off_site"):
        del directives["form-action"]
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _add_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = _content_security_policy()
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
    return response


def install(app: Flask) -> None:
    app.after_request(_add_headers)
