"""A local dyno's files under `<data dir>/dynos/<id>/`, shared by the backend and the dyno's keeper:

- `meta.json`   what was started (app, name, port, size, command) and by whom (keeper pid + start time);
- `state.json`  the keeper's view (state, exit status, cgroups), rewritten atomically;
- `output.log`  one JSON object a line: {"n": number, "t": time, "s": "app"|"heroku", "l": text}, rotated
                to `output.log.1` past a size (`output.py`);
- `position-<consumer>.json`  where a consumer of the output (the log forwarder) has got to;
- `env.json`    the config vars, read and removed by the keeper as it starts (secrets leave the disk);
- `app/`        the dyno's private, writable copy of its slug (the sandbox's /app).

The directory is Berth's (0700): neither the dyno nor another one can read or reach it.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["read_json", "write_json", "process_start_time", "same_process"]


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically: a reader sees the old or the new record, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")  # threads write too
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def process_start_time(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22): with the pid it
    names one process for good, since a reused pid starts later."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None  # a zombie has finished
    return int(fields[19])


def same_process(pid: int | None, start_time: int | None) -> bool:
    return pid is not None and start_time is not None and process_start_time(pid) == start_time
