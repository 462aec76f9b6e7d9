"""API key storage in netrc (like the Heroku CLI), plus the BERTH_API_KEY override.

The file is edited in place: only our machine's entry is replaced or removed, so other
machines, comments and macros stay exactly as the user wrote them.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from berth.cli.errors import NotLoggedIn

_TOKEN = re.compile(r"\S+")


@dataclass
class _Entry:
    start: int
    end: int
    machine: str | None  # None for the `default` entry
    fields: dict[str, str] = field(default_factory=dict)


def netrc_path() -> Path:
    return Path(os.environ.get("NETRC") or Path.home() / ".netrc")


def _parse(text: str) -> list[_Entry]:
    entries: list[_Entry] = []
    current: _Entry | None = None
    pos = 0

    def next_token() -> str:
        nonlocal pos
        m = _TOKEN.search(text, pos)
        if not m:
            return ""
        pos = m.end()
        return m.group()

    while m := _TOKEN.search(text, pos):
        tok, pos = m.group(), m.end()
        if tok.startswith("#"):  # comment runs to end of line
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl
        elif tok in ("machine", "default"):
            name = next_token() if tok == "machine" else None
            current = _Entry(m.start(), pos, name)
            entries.append(current)
        elif tok == "macdef":  # macro body runs to the next blank line; not part of any entry
            current = None
            blank = text.find("\n\n", pos)
            pos = len(text) if blank < 0 else blank + 2
        elif current is not None:
            current.fields[tok] = next_token()
            current.end = pos
    return entries


def read(host: str) -> tuple[str, str] | None:
    """(login, password) stored for `host`, or None."""
    try:
        text = netrc_path().read_text()
    except OSError:
        return None
    for entry in _parse(text):
        if entry.machine == host and entry.fields.get("password"):
            return entry.fields.get("login", ""), entry.fields["password"]
    return None


def _rewrite(host: str, replacement: str) -> bool:
    """Replace every entry for `host` by `replacement` (first one) or nothing; True if one existed."""
    path = netrc_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    entries = _parse(text)
    matches = [e for e in entries if e.machine == host]
    if not matches and not replacement:
        return False
    default = next((e for e in entries if e.machine is None), None)
    for i, entry in enumerate(reversed(matches)):
        end = entry.end + 1 if text[entry.end:entry.end + 1] == "\n" else entry.end
        new = replacement if i == len(matches) - 1 else ""
        text = text[:entry.start] + new + text[end:]
    if not matches and default:  # `default` must stay the last entry
        text = text[:default.start] + replacement + text[default.start:]
    elif not matches:
        text += ("" if not text or text.endswith("\n") else "\n") + replacement
    _write_private(path, text)
    return bool(matches)


def _write_private(path: Path, text: str) -> None:
    # Write a 0600 temp file and rename it, so the token is never world-readable, even briefly.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".netrc-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(host: str, login: str, token: str) -> None:
    _rewrite(host, f"machine {host}\n  login {login}\n  password {token}\n")


def remove(host: str) -> bool:
    return _rewrite(host, "")


def api_key(host: str) -> str:
    """The key to use: BERTH_API_KEY wins over netrc."""
    key = os.environ.get("BERTH_API_KEY") or (read(host) or ("", ""))[1]
    if not key:
        raise NotLoggedIn()
    return key
