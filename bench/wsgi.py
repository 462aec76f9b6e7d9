"""The real Berth app plus one bare route, served side by side by the same gunicorn.

`gunicorn bench.wsgi:app` (from the repository root). `GET /bench/bare` is the baseline of
bench/api.py: a constant small JSON body from a view marked @public, so no authentication,
rate-limit bucket or database session runs for it. The app-wide hooks (Request-Id, after_request)
still run, exactly as they would for any Flask route added to this app.
"""
from __future__ import annotations

from berth import create_app
from berth.httpapi.context import public

app = create_app()

BARE_BODY = {"status": "ok"}


@public
def bench_bare() -> dict[str, str]:
    return BARE_BODY


app.add_url_rule("/bench/bare", "bench_bare", bench_bare, methods=["GET"])
