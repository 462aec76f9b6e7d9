"""Slug files: pack a built /app, `.slugignore`, size limits, the content-addressed store, and an
unpack that refuses every trap a tenant can put in a tarball."""
from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from berth.platform import slugs
from berth.platform.slug_store import LocalSlugStore, MissingSlug, unpack_slug
from berth.platform.slugs import ChecksumMismatch, SlugTooLarge, UnpackLimits, UnsafeSlug


def built_app(root: Path) -> Path:
    app = root / "build"
    (app / "bin").mkdir(parents=True)
    (app / "Procfile").write_text("web: bin/serve\n")
    (app / "bin" / "serve").write_text("#!/bin/sh\necho hi\n")
    (app / "bin" / "serve").chmod(0o755)
    (app / ".git" / "objects").mkdir(parents=True)
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    os.symlink("bin/serve", app / "serve-link")
    os.mkfifo(app / "a-fifo")
    return app


def names(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as tar:
        return set(tar.getnames())


@pytest.fixture(params=["pigz", "in-process"])
def compressor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Pack with Debian's pigz (installed by the project's setup), and without it on PATH."""
    if request.param == "pigz":
        assert shutil.which("pigz"), "pigz is missing: scripts/install-system-packages.sh installs it"
    else:
        monkeypatch.setenv("PATH", "/nonexistent")
    return str(request.param)


def test_pack_keeps_the_app_under_app_leaves_out_git_and_special_files_and_records_sha256(
        tmp_path: Path, compressor: str) -> None:
    packed = slugs.pack(built_app(tmp_path), tmp_path / "slug.tgz")
    assert names(packed.path) == {"app", "app/Procfile", "app/bin", "app/bin/serve", "app/serve-link"}
    with packed.path.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as stream:  # as unpack reads it
        assert {member.name for member in stream} == names(packed.path)
    assert packed.checksum == slugs.checksum_of(packed.path) and packed.checksum.startswith("SHA256:")
    assert packed.size == packed.path.stat().st_size and packed.warnings == ()
    with tarfile.open(packed.path) as tar:
        assert tar.getmember("app/serve-link").linkname == "bin/serve"  # kept as a link, not followed
        assert tar.getmember("app/bin/serve").mode & 0o777 == 0o755


def test_pack_over_the_hard_limit_fails_in_herokus_words_and_leaves_no_tarball(tmp_path: Path, compressor: str) -> None:
    app = built_app(tmp_path)
    (app / "data.bin").write_bytes(os.urandom(3 * slugs.MB))
    with pytest.raises(SlugTooLarge, match=r"^Compiled slug size: 3\.0M is too large \(max is 2M\)\.$") as refused:
        slugs.pack(app, tmp_path / "slug.tgz", hard_limit=2 * slugs.MB)
    assert refused.value and not (tmp_path / "slug.tgz").exists()
    assert "max is 1G" in str(pytest.raises(SlugTooLarge, slugs.check_size, slugs.HARD_LIMIT_BYTES + 1).value)


def test_pack_over_the_soft_limit_warns_in_herokus_words(tmp_path: Path) -> None:
    app = built_app(tmp_path)
    (app / "data.bin").write_bytes(os.urandom(200_000))
    packed = slugs.pack(app, tmp_path / "slug.tgz", soft_limit=100_000)
    assert packed.warnings == ("Warning: Your slug size (0 MB) exceeds our soft limit (0 MB) which may "
                               "affect boot time.",)
    assert slugs.size_warning(350 * slugs.MB) == ("Warning: Your slug size (350 MB) exceeds our soft limit "
                                                 "(300 MB) which may affect boot time.")


def test_slugignore_deletes_matches_before_compile_never_follows_links_and_reports_negation(tmp_path: Path) -> None:
    app = built_app(tmp_path)
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "precious.txt").write_text("x")
    os.symlink(outside / "keep", app / "docs")  # a link named like a pattern: the link goes, not its target
    (app / "tests" / "deep").mkdir(parents=True)
    (app / "tests" / "deep" / "t.py").write_text("")
    (app / "notes.log").write_text("")
    (app / "bin" / "debug.log").write_text("")
    (app / ".slugignore").write_text("# comment\n/tests\n*.log\ndocs\n!bin/debug.log\n")
    result = slugs.apply_slugignore(app)
    assert sorted(result.removed) == ["bin/debug.log", "docs", "notes.log", "tests"]
    assert result.warnings == [".slugignore line 5: negation (!bin/debug.log) is not supported and was skipped."]
    assert not (app / "tests").exists() and not os.path.lexists(app / "docs")
    assert (outside / "keep" / "precious.txt").exists() and (app / "bin" / "serve").exists()


def test_the_store_is_content_addressed_atomic_and_verifies_every_read(tmp_path: Path) -> None:
    packed = slugs.pack(built_app(tmp_path), tmp_path / "slug.tgz")
    store = LocalSlugStore(tmp_path / "store")
    assert store.put(packed.path) == packed.checksum == store.put(packed.path, packed.checksum.upper()[:7] +
                                                                  packed.checksum[7:])
    with store.open(packed.checksum) as stream:
        assert stream.read() == packed.path.read_bytes()
    assert list((tmp_path / "store" / "tmp").iterdir()) == []  # no partial file left behind
    with pytest.raises(ChecksumMismatch):
        store.put(packed.path, "SHA256:" + "0" * 64)
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    blob = next((tmp_path / "store" / "sha256").glob("*/*.tgz"))
    blob.write_bytes(blob.read_bytes()[:-10])  # bit rot or tampering on disk
    with pytest.raises(ChecksumMismatch):
        store.open(packed.checksum)
    store.delete(packed.checksum)
    store.delete(packed.checksum)  # absent is fine
    with pytest.raises(MissingSlug, match="no longer stored"):
        store.open(packed.checksum)
    with pytest.raises(slugs.SlugError, match="Not a slug checksum"):
        store.open("SHA256:../../etc/passwd")


def test_unpack_restores_the_app_tree_with_links_inside_it(tmp_path: Path) -> None:
    packed = slugs.pack(built_app(tmp_path), tmp_path / "slug.tgz")
    store = LocalSlugStore(tmp_path / "store")
    target = tmp_path / "dyno-app"
    unpack_slug(store, store.put(packed.path), target)
    assert (target / "Procfile").read_text() == "web: bin/serve\n"
    assert os.readlink(target / "serve-link") == "bin/serve" and os.access(target / "bin" / "serve", os.X_OK)
    assert not (target / ".git").exists()


def tarball(*entries: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                info, data = entry
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(entry)
    buffer.seek(0)
    return buffer


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    return info


TRAPS = {
    "dot-dot": (entry("app/../../escaped"), b"x"),
    "absolute": (entry("/tmp/escaped"), b"x"),
    "symlink out (absolute)": entry("app/etc", tarfile.SYMTYPE, "/etc"),
    "symlink out (relative)": entry("app/sub/up", tarfile.SYMTYPE, "../../.."),
    "hard link out": entry("app/passwd", tarfile.LNKTYPE, "/etc/passwd"),
    "device": entry("app/null", tarfile.CHRTYPE),
    "fifo": entry("app/pipe", tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_unpack_refuses_traps_and_leaves_nothing(tmp_path: Path, trap: str) -> None:
    target = tmp_path / "dyno-app"
    with pytest.raises(UnsafeSlug):
        slugs.unpack(tarball((entry("app/ok.txt"), b"ok"), TRAPS[trap]), target)
    assert list(target.iterdir()) == [] and not (tmp_path / "escaped").exists()


def test_unpack_never_writes_through_a_link_planted_earlier_in_the_same_tarball(tmp_path: Path) -> None:
    # `app/d -> .` stays inside, then `app/e -> d/..` looks inside lexically but is the parent
    # for real; a file written "into" it would land outside. Writing never passes a link.
    target = tmp_path / "dyno-app"
    with pytest.raises(UnsafeSlug):
        slugs.unpack(tarball(entry("app/d", tarfile.SYMTYPE, "."), entry("app/e", tarfile.SYMTYPE, "d/.."),
                             (entry("app/e/escaped"), b"x")), target)
    assert not (tmp_path / "escaped").exists() and list(target.iterdir()) == []


def test_unpack_stops_a_bomb_early_and_ignores_what_is_outside_app(tmp_path: Path) -> None:
    bomb = tarball((entry("app/zeros"), b"\0" * 2_000_000))
    with pytest.raises(UnsafeSlug, match="more than 1 MB"):
        slugs.unpack(bomb, tmp_path / "a", UnpackLimits(max_bytes=1024 * 1024))
    many = tarball(*[(entry(f"app/f{i}"), b"") for i in range(20)])
    with pytest.raises(UnsafeSlug, match="more than 10 entries"):
        slugs.unpack(many, tmp_path / "b", UnpackLimits(max_members=10))
    slugs.unpack(tarball((entry("README"), b"ignored"), (entry("app/kept", mode=0o4755), b"x")), tmp_path / "c")
    assert os.listdir(tmp_path / "c") == ["kept"]
    assert (tmp_path / "c" / "kept").stat().st_mode & 0o7777 == 0o755  # no setuid from a tarball
    with pytest.raises(UnsafeSlug, match="not a valid gzip tarball"):
        slugs.unpack(io.BytesIO(b"\x1f\x8b garbage" * 100), tmp_path / "d")
