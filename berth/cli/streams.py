"""Self-authorising text streams (log sessions, build and release output), printed as they come."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import requests

from berth.cli import output, progress
from berth.cli.client import ApiClient, _error_from
from berth.cli.errors import ApiError

CONNECT_TIMEOUT = 10.0
HISTORY_READ_TIMEOUT = 60.0  # without --tail the server sends what it has and ends


def print_stream(url: str, tail: bool, show: Callable[[str], None] = click.echo) -> None:
    """A self-authorising text stream (log session, build output), each line to `show` as it comes."""
    # No API key here: the session URL is its own credential, and it must not travel elsewhere.
    try:
        resp = requests.get(url, headers={"Accept": "text/plain", "User-Agent": "berth-cli"}, stream=True,
                            timeout=(CONNECT_TIMEOUT, None if tail else HISTORY_READ_TIMEOUT))
        if not 200 <= resp.status_code < 300:
            raise _error_from(resp)
        pending = b""
        # chunk_size=None: each chunk as the server sends it, so tailed lines show at once.
        for chunk in resp.iter_content(chunk_size=None):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                show(line.decode("utf-8", errors="replace"))
        if pending:
            show(pending.decode("utf-8", errors="replace"))
    except requests.Timeout:
        raise ApiError("timed out reading the stream; run the command again.") from None
    except requests.RequestException as exc:
        raise ApiError(f"the stream broke off ({type(exc).__name__}); run the command again.") from None


def follow_output(client: ApiClient, stream_url: str, record_path: str) -> dict[str, Any]:
    """Print an operation's output stream until it ends (with a progress line per stage on a terminal),
    then fetch the operation's record (`record_path`), whose final status marks the last stage."""
    with progress.stage_lines(output.out) as shown:
        print_stream(stream_url, tail=True, show=shown.line)
        finished: dict[str, Any] = client.get(record_path)
        shown.finish(failed=finished.get("status") == "failed")
    return finished
