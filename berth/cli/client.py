"""HTTP session for the Berth Platform API (Heroku v3 wire format)."""

from __future__ import annotations

import base64
import os
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from berth.cli.errors import ApiError

DEFAULT_URL = "http://127.0.0.1:5000"
ACCEPT = "application/vnd.heroku+json; version=3"
MAX_PAGES = 100  # guard against a server that keeps sending Next-Range


def api_url() -> str:
    return (os.environ.get("BERTH_API_URL") or DEFAULT_URL).rstrip("/")


def api_host(url: str) -> str:
    """host:port as used for the netrc machine name (the Heroku CLI's `apiHost`)."""
    return urlsplit(url).netloc.rpartition("@")[2]


def seg(value: str) -> str:
    """Encode one path segment (names may come from user input)."""
    return quote(str(value), safe="")


def basic_auth(user: str, password: str) -> str:
    # Built by hand: requests encodes Basic credentials as latin-1, which breaks non-ASCII passwords.
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": ACCEPT, "User-Agent": "berth-cli"})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, *, body: Any = None,
                headers: dict[str, str] | None = None) -> requests.Response:
        try:
            resp = self.session.request(method, self.base_url + path, json=body,
                                        headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise ApiError(f"timed out talking to {self.base_url}") from None
        except requests.ConnectionError:
            raise ApiError(f"could not connect to {self.base_url} (is the server running?)") from None
        except requests.RequestException as exc:
            raise ApiError(f"request to {self.base_url} failed: {type(exc).__name__}") from None
        if not 200 <= resp.status_code < 300:
            raise _error_from(resp)
        return resp

    def call(self, method: str, path: str, *, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        return _decode(self.request(method, path, body=body, headers=headers))

    def get(self, path: str, *, headers: dict[str, str] | None = None) -> Any:
        return self.call("GET", path, headers=headers)

    def get_all(self, path: str) -> list[Any]:
        """GET a list, following Next-Range like the Heroku CLI does for unbounded lists."""
        items: list[Any] = []
        headers: dict[str, str] = {}
        for _ in range(MAX_PAGES):
            resp = self.request("GET", path, headers=headers)
            items.extend(_decode(resp) or [])
            nxt = resp.headers.get("Next-Range")
            if not nxt or nxt == headers.get("Range"):
                break
            headers = {"Range": nxt}
        return items

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> Any:
        return self.call("POST", path, body=body if body is not None else {}, headers=headers)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def newest_release(self, app: str) -> dict[str, Any] | None:
        releases = self.get(f"/apps/{seg(app)}/releases",
                            headers={"Range": "version ..; order=desc,max=1"})
        return releases[0] if releases else None


def _decode(resp: requests.Response) -> Any:
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise ApiError(f"unexpected non-JSON answer from {resp.url} (HTTP {resp.status_code})") from None


def _error_from(resp: requests.Response) -> ApiError:
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        return ApiError(str(data["message"]), data.get("id"), resp.status_code)
    return ApiError(f"HTTP {resp.status_code} {resp.reason}", None, resp.status_code)
