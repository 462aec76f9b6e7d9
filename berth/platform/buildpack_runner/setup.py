"""The runner as an installation configures it: one call for the builder.

Operator settings (environment):
- BERTH_LOCAL_BUILDPACK_DIRS: `:`-separated directories whose buildpacks (paths, file:// git URLs)
  apps may name; default none.
- BERTH_BUILD_CA_BUNDLE: a PEM file of certificate authorities builds trust (pip, npm, git, curl
  inside the sandbox, and the builder's own pip when it fetches a Node), for a TLS-intercepting
  egress proxy; default none (the stack's own CAs).
- BERTH_PYTHONS_DIR: a directory of CPythons the operator installs, `<name>/bin/python3.X` each,
  bound read-only at /opt in builds (and dynos); default none (the stack's CPython only).
- BERTH_NODE_CACHE_DIR: where Node versions other than the stack's are kept, one directory per
  version; default `<data dir>/runtimes/node`.
Fetched buildpacks are cached under `<data dir>/buildpacks`; builds' scratch lives in `<data dir>/builds`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from berth.outbound import TargetPolicy
from berth.supervise.stack import require_stack

from .node_versions import NodeVersions
from .pythons import pythons_dir
from .references import BuildpackFetcher
from .runner import DEFAULT_MEMORY, DEFAULT_TIMEOUT, BuildpackRunner

__all__ = ["configured_runner", "local_buildpack_dirs"]


def local_buildpack_dirs(env: Mapping[str, str]) -> list[Path]:
    return [Path(part) for part in env.get("BERTH_LOCAL_BUILDPACK_DIRS", "").split(":") if part.strip()]


def configured_runner(data_dir: Path, policy: TargetPolicy, *, env: Mapping[str, str] | None = None,
                      timeout: float = DEFAULT_TIMEOUT, memory_limit: int | None = DEFAULT_MEMORY) -> BuildpackRunner:
    env = os.environ if env is None else env
    bundle = env.get("BERTH_BUILD_CA_BUNDLE", "").strip()
    if bundle and not Path(bundle).is_file():
        raise ValueError(f"BERTH_BUILD_CA_BUNDLE={bundle} is not a file: point it at a PEM bundle or unset it")
    fetcher = BuildpackFetcher(data_dir / "buildpacks", policy, local_roots=local_buildpack_dirs(env))
    stack = require_stack()
    ca_bundle = Path(bundle) if bundle else None
    node_cache = Path(env.get("BERTH_NODE_CACHE_DIR", "").strip() or data_dir / "runtimes" / "node")
    return BuildpackRunner(stack, fetcher, work_dir=data_dir / "builds", timeout=timeout,
                           memory_limit=memory_limit, ca_bundle=ca_bundle,
                           node_versions=NodeVersions(node_cache, stack, ca_bundle), pythons=pythons_dir(env))
