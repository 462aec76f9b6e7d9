"""Deploying code to an app of a live server over HTTP, as a client of the API would: create a
slug with process types, upload it to its blob URL, release it."""
from __future__ import annotations

from typing import Any, Callable

import requests

from tests.api.test_slugs import slug_tarball

ApiCall = Callable[..., requests.Response]  # (method, path, json=...) -> response
PROCS = {"web": "gunicorn app:app", "worker": "python worker.py"}


def deploy_over_http(api: ApiCall, app: str, process_types: dict[str, str] = PROCS) -> dict[str, Any]:
    slug = api("POST", f"/apps/{app}/slugs", json={"process_types": process_types})
    assert slug.status_code == 201, slug.text
    stored = requests.put(slug.json()["blob"]["url"], data=slug_tarball(app), headers={"Content-Type": ""},
                          timeout=30)
    assert stored.status_code == 200, stored.text
    release = api("POST", f"/apps/{app}/releases", json={"slug": slug.json()["id"]})
    assert release.status_code == 201, release.text
    return release.json()
