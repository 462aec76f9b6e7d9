"""The Procfile: `<type>: <command>` lines (runtime.md §3)."""
from __future__ import annotations

import re

__all__ = ["ProcfileError", "parse_procfile"]

LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


class ProcfileError(ValueError):
    """A Procfile line that is not `<type>: <command>`; the message names the line."""


def parse_procfile(text: str) -> dict[str, str]:
    """Process types in file order. Blank lines and `#` comments are skipped; anything else that is
    not `type: command` is an error naming its line (Heroku ignores such lines silently, which
    hides typos until the process never starts)."""
    types: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        if not match:
            raise ProcfileError(f"line {number} is not `<process type>: <command>`: {line[:80]!r}")
        name, command = match.group(1), match.group(2).strip()
        if name in types:
            raise ProcfileError(f"line {number} declares process type {name!r} a second time")
        types[name] = command
    return types
