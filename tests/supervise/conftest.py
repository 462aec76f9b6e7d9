"""The stack (built once per machine by `make setup`; built here if a fresh machine lacks it) and a
helper that runs one command in a sandbox and collects its output."""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from berth.supervise import stack as stacks
from berth.supervise.sandbox import SandboxResult, SandboxSpec, run, sandbox_account


@pytest.fixture(scope="session")
def stack_root() -> Path:
    root = stacks.stack_root()
    if not stacks.is_built(root):
        stacks.build(out=sys.stderr)  # minutes, once per machine and package list
    return stacks.require_stack()


@dataclass
class Ran:
    result: SandboxResult
    lines: list[str]

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


class Launcher:
    """Runs commands in sandboxes over one app dir, with the defaults a build would use."""

    def __init__(self, stack: Path, app_dir: Path) -> None:
        self.spec = SandboxSpec(stack=stack, app_dir=app_dir, argv=["true"], account=sandbox_account(),
                                app_writable=True, memory_limit=256 * 1024 * 1024, timeout=60, network=False,
                                name="test")

    def __call__(self, *argv: str, **changes: Any) -> Ran:
        lines: list[str] = []
        result = run(replace(self.spec, argv=list(argv), **changes), lines.append)
        return Ran(result, lines)

    def sh(self, script: str, *args: str, **changes: Any) -> Ran:
        return self("sh", "-c", script, *args, **changes)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    return directory


@pytest.fixture
def sandbox(stack_root: Path, app_dir: Path) -> Launcher:
    return Launcher(stack_root, app_dir)
