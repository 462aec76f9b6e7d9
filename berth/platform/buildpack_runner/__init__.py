"""Classic buildpacks: references and their fetching, and the runner that compiles an app with them
inside the build sandbox (for the builder's build job).

The names below load on first use: every dyno's keeper imports `pythons` from here, and should not
pay for the buildpack fetcher (requests, the outbound policy) at each start."""
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"ProcfileError": "procfile", "parse_procfile": "procfile",
          "BUILTIN_ORDER": "references", "Buildpack": "references", "BuildpackError": "references",
          "BuildpackFetcher": "references", "builtin_name": "references",
          "BuildFailed": "runner", "BuildpackRunner": "runner", "BuildResult": "runner", "chosen_buildpacks": "runner",
          "configured_runner": "setup"}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
