"""Unpacking a source tarball (berth.platform.sources.extract): what a well-formed one gives, and
every hostile one refused with a message a build can print, leaving no stray files. Tarballs are
built here with `tarfile`, byte for byte what an attacker could upload."""
from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from berth.platform.sources import ArchiveLimits, SourceError, extract

MiB = 1024 * 1024


def entry(name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", link: str = "",
          mode: int = 0o644, size: int | None = None) -> tuple[tarfile.TarInfo, io.IOBase | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data) if size is None else size
        return info, io.BytesIO(data)
    return info, None


def tarball(path: Path, entries: list[tuple[tarfile.TarInfo, io.IOBase | None]], *, mode: str = "w:gz",
            fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, mode, format=fmt) as archive:  # type: ignore[call-overload]
        for info, data in entries:
            archive.addfile(info, data)
    return path


def leftovers(directory: Path, *keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


class Zeros(io.RawIOBase):
    """`size` zero bytes, read without holding them in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def test_a_gnu_tar_style_archive_unpacks_with_modes_links_and_no_privileged_bits(tmp_path: Path) -> None:
    source = tarball(tmp_path / "source.tgz", [
        entry("./", tarfile.DIRTYPE, mode=0o755),
        entry("./app.py", data=b"print('hi')\n"),
        entry("./bin/", tarfile.DIRTYPE, mode=0o755),
        entry("./bin/start", data=b"#!/bin/sh\n", mode=0o4777),  # setuid, world-writable
        entry("./current", tarfile.SYMTYPE, link="bin/start"),
        entry("./bin/up", tarfile.SYMTYPE, link="../app.py"),
        entry("./copy.py", tarfile.LNKTYPE, link="./app.py"),
        entry("./lib/deep/x.txt", data=b"x"),  # its directories were never listed
    ])
    app = extract(source, tmp_path / "app")
    assert (app / "app.py").read_bytes() == b"print('hi')\n"
    assert stat.S_IMODE((app / "bin" / "start").stat().st_mode) == 0o755
    assert os.readlink(app / "current") == "bin/start" and (app / "bin" / "up").read_text() == "print('hi')\n"
    assert (app / "copy.py").stat().st_ino == (app / "app.py").stat().st_ino
    assert (app / "lib" / "deep" / "x.txt").read_bytes() == b"x"
    assert leftovers(tmp_path) == ["app", "source.tgz"]


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_a_github_style_single_top_directory_is_stripped(tmp_path: Path, mode: str) -> None:
    source = tarball(tmp_path / "source.tar", [
        entry("repo-0123abc/", tarfile.DIRTYPE), entry("repo-0123abc/Procfile", data=b"web: ./run\n"),
        entry("repo-0123abc/src/a.py", data=b"a"), entry("repo-0123abc/link", tarfile.SYMTYPE, link="src/a.py")],
        mode=mode)
    (tmp_path / "app").mkdir()  # an empty directory may be the destination too
    app = extract(source, tmp_path / "app")
    assert sorted(p.name for p in app.iterdir()) == ["Procfile", "link", "src"]
    assert (app / "link").read_text() == "a"


def test_several_top_level_entries_are_kept_as_they_are(tmp_path: Path) -> None:
    source = tarball(tmp_path / "s.tgz", [entry("only/", tarfile.DIRTYPE), entry("only/a", data=b"a"),
                                          entry("README", data=b"r")])
    assert sorted(p.name for p in extract(source, tmp_path / "app").iterdir()) == ["README", "only"]


HOSTILE: dict[str, tuple[list[tuple[tarfile.TarInfo, io.IOBase | None]], str]] = {
    "absolute path": ([entry("/etc/cron.d/evil", data=b"x")], "is an absolute path"),
    "dot-dot": ([entry("app/../../evil", data=b"x")], "climbs out of the app's directory"),
    "absolute symlink": ([entry("etc", tarfile.SYMTYPE, link="/etc")], "points to an absolute path"),
    "symlink out": ([entry("a/up", tarfile.SYMTYPE, link="../../outside")], "points out of the app's directory"),
    # Each link looks inside when it is made; together they resolve to the parent of the app.
    "symlink chain out": ([entry("x", tarfile.SYMTYPE, link="l1/../outside"), entry("l1", tarfile.SYMTYPE, link="."),
                           entry("keep", data=b"k")], "resolves to a place outside"),
    "write through a symlink": ([entry("d/", tarfile.DIRTYPE), entry("via", tarfile.SYMTYPE, link="d"),
                                 entry("via/file", data=b"x")], "is a link or a file"),
    "file then directory": ([entry("f", data=b"x"), entry("f/g", data=b"y")], "is a link or a file"),
    "hard link out": ([entry("passwd", tarfile.LNKTYPE, link="../../../etc/passwd")], "climbs out"),
    "hard link absolute": ([entry("passwd", tarfile.LNKTYPE, link="/etc/passwd")], "is an absolute path"),
    "hard link to nothing": ([entry("h", tarfile.LNKTYPE, link="missing")], "does not point to a file"),
    "hard link to a symlink": ([entry("s", tarfile.SYMTYPE, link="t"), entry("t", data=b""),
                                entry("h", tarfile.LNKTYPE, link="s")], "does not point to a file"),
    "character device": ([entry("null", tarfile.CHRTYPE)], "is a device file or FIFO"),
    "block device": ([entry("sda", tarfile.BLKTYPE)], "is a device file or FIFO"),
    "fifo": ([entry("pipe", tarfile.FIFOTYPE)], "is a device file or FIFO"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path: Path, case: str) -> None:
    entries, message = HOSTILE[case]
    work = tmp_path / "work"
    work.mkdir()
    source = tarball(tmp_path / "s.tgz", [entry("ok.txt", data=b"fine"), *entries])
    with pytest.raises(SourceError, match=message) as refused:
        extract(source, work / "app")
    assert "Rebuild the tarball" in refused.value.message
    assert leftovers(work) == []
    assert leftovers(tmp_path, "work") == ["s.tgz"]  # nothing was written beside or above the app


def test_a_symlink_made_before_its_escape_is_refused_even_after_stripping(tmp_path: Path) -> None:
    # Inside `top/` the link stays in the tree; once `top/` becomes the app it points beside it.
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "secret").write_text("s")
    source = tarball(tmp_path / "s.tgz", [entry("top/a", data=b"a"),
                                          entry("top/peek", tarfile.SYMTYPE, link="../top/secret")])
    with pytest.raises(SourceError, match="resolves to a place outside"):
        extract(source, tmp_path / "app")
    assert not (tmp_path / "app").exists()


def test_too_many_files_and_too_many_bytes_are_refused(tmp_path: Path) -> None:
    many = tarball(tmp_path / "many.tgz", [entry(f"f{i}", data=b"x") for i in range(11)])
    with pytest.raises(SourceError, match="more than 10 entries"):
        extract(many, tmp_path / "a", ArchiveLimits(max_files=10))
    big = tarball(tmp_path / "big.tgz", [entry("a", data=b"x" * 600_000), entry("b", data=b"y" * 600_000)])
    with pytest.raises(SourceError, match="more than 1 MiB"):
        extract(big, tmp_path / "b", ArchiveLimits(max_bytes=1 * MiB))
    assert leftovers(tmp_path) == ["big.tgz", "many.tgz"]


def test_a_gzip_bomb_stops_early_with_a_clear_message(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tgz"
    size = 256 * MiB
    with tarfile.open(bomb, "w:gz", compresslevel=1) as archive:
        info = tarfile.TarInfo("zeros")
        info.size = size
        archive.addfile(info, io.BufferedReader(Zeros(size)))  # type: ignore[arg-type]
    assert bomb.stat().st_size < size // 100
    started = time.monotonic()
    with pytest.raises(SourceError, match="expands more than 200 times"):
        extract(bomb, tmp_path / "app", ArchiveLimits(max_bytes=4096 * MiB, ratio_floor=4 * MiB))
    assert time.monotonic() - started < 2  # stopped near the floor, not after 256 MiB
    assert leftovers(tmp_path) == ["bomb.tgz"]


def test_a_huge_tar_header_is_refused_before_it_fills_memory(tmp_path: Path) -> None:
    info = tarfile.TarInfo("a")
    info.pax_headers = {"comment": "A" * (3 * MiB)}
    source = tarball(tmp_path / "s.tar", [(info, io.BytesIO(b""))], mode="w")
    with pytest.raises(SourceError, match="tar header is larger than 1 MiB"):
        extract(source, tmp_path / "app")


@pytest.mark.parametrize("content", [b"", b"not a tarball at all" * 100, b"\x1f\x8b\x08\x00garbage"])
def test_what_is_not_a_tarball_is_refused_clearly(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "s.tgz").write_bytes(content)
    with pytest.raises(SourceError, match="not a valid tar archive"):
        extract(tmp_path / "s.tgz", tmp_path / "app")
    assert leftovers(tmp_path) == ["s.tgz"]


def test_a_sparse_file_is_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo("disk.img")
    info.type = tarfile.GNUTYPE_SPARSE
    source = tarball(tmp_path / "s.tgz", [(info, None)], fmt=tarfile.GNU_FORMAT)
    with pytest.raises(SourceError, match="sparse file"):
        extract(source, tmp_path / "app")
