"""Berth prepares the binds as root: a tenant's planted symlinks and hard links must not make it touch
anything outside the app's directory, and bad binds are refused before anything starts."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.supervise.sandbox import Bind, SandboxError

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another account needs root")]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Root's files next to the app dir, which a tenant would like Berth to hand over or write to."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "shadow").write_text("root only")
    os.chmod(directory / "shadow", 0o600)
    return directory


def owner(path: Path) -> int:
    return os.stat(path, follow_symlinks=False).st_uid


def test_symlinks_planted_in_a_build_dir_are_handed_over_themselves_never_their_targets(
        sandbox, app_dir: Path, outside: Path) -> None:
    (app_dir / "src").mkdir()
    (app_dir / "src" / "app.py").write_text("print('hi')\n")
    (app_dir / "to-dir").symlink_to(outside)
    (app_dir / "src" / "to-file").symlink_to(outside / "shadow")
    ran = sandbox.sh("echo planted > /app/to-dir/new; echo overwritten > /app/src/to-file; echo end")
    assert ran.lines[-1] == "end"
    uid = sandbox.spec.account.uid
    assert owner(app_dir / "src" / "app.py") == uid and owner(app_dir / "to-dir") == uid
    assert owner(outside) == 0 and owner(outside / "shadow") == 0
    assert (outside / "shadow").read_text() == "root only"
    assert not (outside / "new").exists()  # inside, the link's target simply does not exist


def test_a_hard_linked_file_in_the_build_dir_is_not_handed_over(sandbox, app_dir: Path, outside: Path) -> None:
    os.link(outside / "shadow", app_dir / "linked")
    ran = sandbox.sh("cat /app/linked || echo unreadable")
    assert ran.lines[-1] == "unreadable" and "Permission denied" in ran.output
    assert owner(outside / "shadow") == 0


def test_an_app_dir_that_is_a_symlink_is_refused_before_anything_runs(sandbox, tmp_path: Path,
                                                                      outside: Path) -> None:
    link = tmp_path / "app-link"
    link.symlink_to(outside)
    with pytest.raises(SandboxError, match="refusing to bind .*app-link.*symlink"):
        sandbox.sh("echo planted > /app/new", app_dir=link)
    assert owner(outside) == 0 and owner(outside / "shadow") == 0 and not (outside / "new").exists()


def test_a_cache_dir_that_is_a_symlink_is_refused(sandbox, tmp_path: Path, outside: Path) -> None:
    cache = tmp_path / "cache"
    cache.symlink_to(outside)
    with pytest.raises(SandboxError, match="refusing to bind"):
        sandbox.sh("true", binds=[Bind(cache, "/tmp/cache", writable=True)])
    assert owner(outside) == 0


@pytest.mark.parametrize("target", ["tmp/cache", "/tmp/../etc", ""])
def test_a_bind_target_must_be_absolute_and_plain(sandbox, tmp_path: Path, target: str) -> None:
    with pytest.raises(SandboxError, match="bind target"):
        sandbox.sh("true", binds=[Bind(tmp_path, target)])


def test_a_missing_stack_is_refused_with_what_to_do(sandbox, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="build-stack"):
        sandbox.sh("true", stack=tmp_path)


def test_a_bind_source_inside_a_dir_the_sandbox_writes_is_refused(sandbox, app_dir: Path) -> None:
    """A running build owns its app dir; a bind whose parent is that dir could be swapped for a
    symlink between Berth's check and bwrap's mount."""
    sandbox.sh("mkdir /app/cache")  # the app dir now belongs to the sandbox account
    with pytest.raises(SandboxError, match="writable by berth-sandbox"):
        sandbox.sh("true", binds=[Bind(app_dir / "cache", "/tmp/cache", writable=True)])
