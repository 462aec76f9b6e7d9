"""The built-in static buildpack: a site directory served by gunicorn and WhiteNoise (needs PyPI)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_the_static_site_is_detected_built_and_served(builder) -> None:
    built = builder.compile("static-site")
    assert built.error is None, built.output
    assert built.lines[:2] == ["-----> Static HTML app detected", "-----> Serving public with gunicorn and WhiteNoise"]
    assert set(built.result.process_types) == {"web"}
    index = builder.serve(built.result)
    assert index.status_code == 200
    assert "<h1>Hello from a static site</h1>" in index.text
    assert index.headers["Content-Type"].startswith("text/html")
    assert builder.serve(built.result, path="/css/site.css").text == "h1 { color: teal; }\n"
    outside = builder.serve(built.result, path="/notes.txt")  # outside static.json's root
    assert outside.status_code == 404


def test_a_site_root_outside_the_app_is_refused(builder) -> None:
    source = builder.source("static-site")
    (source / "static.json").write_text('{"root": "../../etc"}')
    built = builder.compile(source)
    assert built.error is not None
    assert " !     static.json's root '../../etc' is outside the app; name a directory inside it." in built.lines
