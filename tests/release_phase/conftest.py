"""The release phase's tests: the stack (built by `make setup`; here if a fresh machine lacks it)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from berth.supervise import stack as stacks


@pytest.fixture(scope="session")
def stack() -> Path:
    if not stacks.is_built(stacks.stack_root()):
        stacks.build(out=sys.stderr)  # minutes, once per machine and package list
    return stacks.require_stack()
