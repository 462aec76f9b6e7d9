"""slug_runs: a command run from a stored slug in the sandbox, with the dyno's environment,
`.profile.d` and `.profile` sourced first, and nothing left behind; tampered or unsafe slugs never run."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from berth.platform.slug_runs import SlugRunner
from berth.platform.slug_store import LocalSlugStore
from berth.platform.slugs import ChecksumMismatch, UnsafeSlug, pack

pytestmark = pytest.mark.slow


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@pytest.fixture
def store(tmp_path: Path) -> LocalSlugStore:
    return LocalSlugStore(tmp_path / "slugs")


@pytest.fixture
def runner(store: LocalSlugStore, stack: Path, tmp_path: Path) -> SlugRunner:
    return SlugRunner(store, tmp_path / "runs", stack=stack)


@pytest.fixture
def checksum(store: LocalSlugStore, tmp_path: Path) -> str:
    """A slug whose .profile.d puts its bin/ on PATH and whose .profile builds on what that set."""
    app = tmp_path / "build"
    write(app / "bin" / "greet", "#!/bin/sh\necho \"hello from $(pwd)\"\n", 0o755)
    write(app / ".profile.d" / "10-path.sh", 'export PATH="$HOME/bin:$PATH"\nexport ORDER=profile.d\n')
    write(app / ".profile", 'export ORDER="$ORDER,profile"\nexport GREETING=${GREETING:-default}\n')
    packed = pack(app, tmp_path / "slug.tgz")
    return store.put(packed.path, packed.checksum)


def run(runner: SlugRunner, checksum: str, command: str, **options) -> tuple[object, list[str]]:
    lines: list[str] = []
    options = {"dyno": "release.7", "config": {}, "timeout": 60, **options}
    result = runner.run(checksum, command, on_line=lines.append, **options)
    return result, lines


def test_the_command_sees_the_dyno_env_and_the_profiles_in_herokus_order(runner, checksum, tmp_path) -> None:
    config = {"GREETING": "from-config", "DYNO": "web.99", "HOME": "/elsewhere", "SECRET": "s3"}
    result, lines = run(runner, checksum, 'greet; echo "$DYNO $HOME $ORDER $GREETING $SECRET ${PORT:-noport} $(id -un)"',
                        config=config)
    assert result.succeeded and result.exit_code == 0, lines
    assert lines == ["hello from /app", "release.7 /app profile.d,profile from-config s3 noport berth-sandbox"]
    assert list((tmp_path / "runs").iterdir()) == []  # the unpacked /app is gone

    result, lines = run(runner, checksum, 'echo "$PORT"', dyno="web.1", port=5123)
    assert lines == ["5123"] and result.succeeded


def test_failures_come_back_as_results(runner, checksum, tmp_path) -> None:
    result, lines = run(runner, checksum, "echo about to fail; exit 3")
    assert (result.exit_code, result.timed_out, result.succeeded) == (3, False, False)
    assert lines == ["about to fail"] and result.describe() == "exited with status 3"

    result, lines = run(runner, checksum, "echo waiting; sleep 60", timeout=1)
    assert result.timed_out and not result.succeeded and lines == ["waiting"]
    assert result.describe() == "timed out and was stopped"

    result, _ = run(runner, checksum, "python3 -c 'block = bytearray(400 * 1024 * 1024)'",
                    memory_limit=64 * 1024 * 1024)
    assert result.oom_killed and result.describe() == "ran out of memory and was stopped"
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_tampered_slug_never_runs(runner, store, checksum, tmp_path) -> None:
    blob = store.root / "sha256" / checksum[7:9] / f"{checksum[7:]}.tgz"
    blob.write_bytes(blob.read_bytes()[:-20] + b"x" * 20)
    with pytest.raises(ChecksumMismatch):
        run(runner, checksum, f"touch {tmp_path}/ran")
    assert not (tmp_path / "ran").exists() and list((tmp_path / "runs").iterdir()) == []


def test_an_unsafe_uploaded_slug_is_refused_before_anything_runs(runner, store, tmp_path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        link = tarfile.TarInfo("app/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
        payload = b"pwned"
        member = tarfile.TarInfo("app/escape/berth-was-here")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    raw.seek(0)
    checksum = store.put_stream(raw)
    with pytest.raises(UnsafeSlug):
        run(runner, checksum, "true")
    assert not Path("/etc/berth-was-here").exists() and list((tmp_path / "runs").iterdir()) == []
