"""The dyno backend's tests: real slugs in a real store, real sandboxed dynos from them."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from berth.platform.dynos.local import LocalBackend
from berth.platform.slug_store import LocalSlugStore
from berth.platform.slugs import pack
from berth.supervise import stack as stacks


@pytest.fixture(scope="session")
def stack() -> Path:
    if not stacks.is_built(stacks.stack_root()):
        stacks.build(out=sys.stderr)  # minutes, once per machine and package list
    return stacks.require_stack()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dyno-data")


@pytest.fixture(scope="module")
def store(data_dir: Path) -> LocalSlugStore:
    return LocalSlugStore(data_dir / "slugs")


@pytest.fixture(scope="module")
def checksum(store: LocalSlugStore, tmp_path_factory) -> str:
    """A slug with a .profile.d and a .profile, as a buildpack leaves them."""
    build = tmp_path_factory.mktemp("build")
    app = build / "app"
    (app / ".profile.d").mkdir(parents=True)
    (app / ".profile.d" / "10-order.sh").write_text("export ORDER=profile.d\n")
    (app / ".profile").write_text('export ORDER="$ORDER,profile"\n')
    (app / "index.html").write_text("hello from the slug\n")
    packed = pack(app, build / "slug.tgz")
    return store.put(packed.path, packed.checksum)


@pytest.fixture(scope="module")
def backend(data_dir: Path, store: LocalSlugStore, stack: Path) -> LocalBackend:
    backend = LocalBackend(data_dir, store, stack=stack)
    yield backend
    for status in backend.list():
        if status.state in ("starting", "up"):
            backend.stop(status.id, grace=1)
        backend.remove(status.id)  # their copies of the slug, their output


def eventually(check: Callable[[], object], timeout: float = 30.0, what: str = "the condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")
