"""How every dyno's process starts (formation, one-off and release-phase dynos alike): its
environment and the bash prologue that sources the slug's profiles before the command.

Standard library only: the keeper of each formation dyno imports it, and a keeper's start-up time
is paid once per dyno started (see dynos/local.py)."""
from __future__ import annotations

from typing import Mapping

from berth.supervise.sandbox import DEFAULT_PATH

# Sourced before the command, in Heroku's order (runtime.md §1.4, §6.1); "$1" is the command, run by
# a fresh bash so that it sees what the profiles exported (and expands `$PORT` itself).
PROFILE_THEN_COMMAND = """
for profile_script in /app/.profile.d/*.sh; do
  if [ -r "$profile_script" ]; then . "$profile_script"; fi
done
unset profile_script
if [ -r /app/.profile ]; then . /app/.profile; fi
hash -r
exec /bin/bash -c "$1"
"""


def dyno_argv(command: str) -> list[str]:
    return ["/bin/bash", "-c", PROFILE_THEN_COMMAND, "berth-dyno", command]


def dyno_environment(config: Mapping[str, str], dyno: str, port: int | None = None) -> dict[str, str]:
    """What a dyno's process starts with: the release's config, then what Heroku sets for every
    dyno over it (`DYNO`, `HOME=/app`, `PORT` for web; a config var cannot replace those)."""
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", **config, "DYNO": dyno, "HOME": "/app"}
    if port is not None:
        env["PORT"] = str(port)
    return env
