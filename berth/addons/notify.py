"""Telling an app's owners something (a database over its limit, a restriction lifted) the way any
add-on may: a line written into the app's log stream through the `log_input_url` the provision call
carried (partner API §5.7). Best effort: a notice that cannot be sent is logged here instead."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import requests

log = logging.getLogger(__name__)


def input_frame(token: str, process: str, message: str, *, at: datetime | None = None) -> bytes:
    """One RFC 5424 frame as log input takes it: APP-NAME is the input token (Logplex's form)."""
    moment = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    frame = f"<190>1 {moment.isoformat(timespec='microseconds')} host {token} {process} - - {message}"
    encoded = frame.encode()
    return str(len(encoded)).encode() + b" " + encoded


def post_notice(log_input_url: str | None, process: str, message: str, *, user_agent: str) -> bool:
    if not log_input_url:
        return False
    parts = urlsplit(log_input_url)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    target = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    try:
        answer = requests.post(target, data=input_frame(parts.password or "", process, message), timeout=5,
                               auth=(parts.username or "", parts.password or ""),
                               headers={"Content-Type": "application/logplex-1", "User-Agent": user_agent})
    except requests.RequestException as error:
        log.warning("could not post a notice to the app's log stream: %s", type(error).__name__)
        return False
    if answer.status_code >= 300:
        log.warning("the app's log input refused a notice: HTTP %s", answer.status_code)
    return answer.status_code < 300
