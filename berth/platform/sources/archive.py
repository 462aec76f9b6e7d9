"""Unpacking a source tarball (tar, tar.gz, tar.bz2, tar.xz) safely into an app directory.

The tarball is the user's: it may try to write outside the directory (absolute names, `..`,
links that point out, a member written through a link), create device files or FIFOs, or
expand without end (a gzip bomb, a huge tar header). `tarfile` only parses here; the writer
never follows a link while writing (every path component is opened with O_NOFOLLOW under the
directory's own descriptor), so no order of members can escape, whatever the Python patch
level. Symlinks are kept only when, once everything is unpacked, they still resolve inside.

Archives whose members all sit in one top-level directory (GitHub's `repo-<sha>/…`) have it
stripped, as Heroku does. A refusal raises SourceError with a message a build can print, and
leaves nothing behind: members are unpacked into a staging directory beside `dest`.
"""
from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from berth.platform.sources.errors import SourceError

MiB = 1024 * 1024
CHUNK = 64 * 1024
REGULAR_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
WHAT_NEXT = "Rebuild the tarball without it (e.g. `tar czf source.tgz -C DIR .`) and try again."


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int = 2048 * MiB        # the unpacked files' total size
    max_files: int = 100_000           # entries of every kind
    max_ratio: int = 200               # unpacked bytes per compressed byte ...
    ratio_floor: int = 32 * MiB        # ... checked once this much is unpacked
    max_header_bytes: int = 1 * MiB    # one member's tar headers (long names, pax records)
    max_depth: int = 128               # directories in one path


def extract(tarball: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Unpack `tarball` into `dest` (absent or an empty directory; its parent must exist) and
    return `dest`. Raises SourceError, leaving `dest` as it was, when the archive is refused."""
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise ValueError(f"{dest} must be absent or an empty directory")
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpacking-", dir=dest.parent))
    try:
        symlinks = _unpack(tarball, staging, limits)
        top = _single_top_directory(staging)
        root = staging / top if top else staging
        if top:
            symlinks = [link[1:] for link in symlinks]
        os.rename(root, dest)
        try:
            _check_symlinks_stay_inside(dest, symlinks)
        except SourceError:
            shutil.rmtree(dest)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _unpack(tarball: Path, staging: Path, limits: ArchiveLimits) -> list[tuple[str, ...]]:
    with ExitStack() as stack:
        raw = stack.enter_context(open(tarball, "rb"))
        meter = _Meter(raw, stack.enter_context(_decoder(raw)), limits)
        writer = _Writer(staging, limits)
        header_too_large = (f"One entry's tar header is larger than {limits.max_header_bytes // MiB} MiB; "
                            "the archive is malformed or hostile.")
        try:
            meter.allow(limits.max_header_bytes, header_too_large)  # opening reads the first header
            archive = stack.enter_context(tarfile.open(fileobj=meter, mode="r|"))  # type: ignore[call-overload]
            while True:
                meter.allow(limits.max_header_bytes, header_too_large)
                member = archive.next()
                if member is None:
                    return writer.symlinks
                meter.allow(max(member.size, 0) + limits.max_header_bytes, "An entry holds more data than "
                            "its header says; the archive is malformed.")
                writer.add(member, archive)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SourceError("The source could not be unpacked: the server is out of disk space. "
                                  "Ask the operator to free some, then try again.") from None
            raise SourceError("The source is not a valid tar archive (tar, tar.gz, tar.bz2 or tar.xz): "
                              f"{_reason(error)}. Upload a tarball made with `tar czf`.") from None
    raise AssertionError("unreachable")


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:200]


def _decoder(raw: IO[bytes]) -> IO[bytes]:
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]
    return raw  # a plain tar: what is read is what was uploaded


class _Meter:
    """The decompressed stream tarfile reads, measured: a gzip bomb stops at the ratio limit,
    a huge header at its budget, before either fills memory or disk."""

    def __init__(self, raw: IO[bytes], decoded: IO[bytes], limits: ArchiveLimits) -> None:
        self.raw, self.decoded, self.limits = raw, decoded, limits
        self.unpacked = 0
        self.budget, self.over_budget = 0, ""

    def allow(self, size: int, message: str) -> None:
        self.budget, self.over_budget = size, message

    def read(self, size: int = -1) -> bytes:
        data = self.decoded.read(CHUNK if size < 0 or size > CHUNK else size)
        self.unpacked += len(data)
        self.budget -= len(data)
        if self.budget < 0:
            raise SourceError(f"The source archive was refused. {self.over_budget} {WHAT_NEXT}")
        limits = self.limits
        if self.unpacked > limits.ratio_floor and self.unpacked > limits.max_ratio * max(self.raw.tell(), 1):
            raise SourceError(f"The source archive was refused: it expands more than {limits.max_ratio} "
                              "times (a compression bomb?). Upload the source itself, without "
                              "padding or generated files.")
        return data


class _Writer:
    """Creates members under `root` without ever following a link."""

    def __init__(self, root: Path, limits: ArchiveLimits) -> None:
        self.root, self.limits = root, limits
        self.files = 0
        self.bytes = 0
        self.symlinks: list[tuple[str, ...]] = []

    def add(self, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            _refuse(f"it has more than {self.limits.max_files} entries")
        parts = self._parts(member.name)
        if not parts:
            if member.isdir():
                return  # "./": the root itself
            _refuse(f"the entry {member.name!r} has no name")
        if member.isdir():
            os.close(self._directory(parts, create=True))
        elif member.issparse():
            _refuse(f"{_shown(parts)} is a sparse file")
        elif member.type in REGULAR_TYPES:
            self._file(parts, member, archive)
        elif member.issym():
            self._symlink(parts, member.linkname)
        elif member.islnk():
            self._hardlink(parts, member.linkname)
        elif member.ischr() or member.isblk() or member.isfifo():
            _refuse(f"{_shown(parts)} is a device file or FIFO")
        else:
            _refuse(f"{_shown(parts)} is a kind of tar entry Berth does not unpack (type {member.type!r})")

    def _parts(self, name: str) -> tuple[str, ...]:
        if "\x00" in name:
            _refuse("an entry's name contains a NUL character")
        if name.startswith("/"):
            _refuse(f"{name!r} is an absolute path")
        parts = tuple(part for part in name.split("/") if part not in ("", "."))
        if ".." in parts:
            _refuse(f"{name!r} climbs out of the app's directory with '..'")
        if len(parts) > self.limits.max_depth:
            _refuse(f"{name[:100]!r}… is nested more than {self.limits.max_depth} directories deep")
        return parts

    def _directory(self, parts: tuple[str, ...], *, create: bool) -> int:
        """A descriptor of the directory `parts`, reached without following any link."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        for index, part in enumerate(parts):
            try:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    _refuse(f"{_shown(parts[:index + 1])} is a link or a file, and an entry is written "
                            f"through it ({_shown(parts)})")
                if error.errno == errno.ENOENT:
                    _refuse(f"{_shown(parts)} refers to a directory the archive does not hold")
                raise
            os.close(fd)
            fd = child
        return fd

    def _clear(self, parent: int, name: str, parts: tuple[str, ...]) -> None:
        """A later entry of the same name replaces an earlier file or link (as tar does); never a directory."""
        try:
            found = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(found.st_mode):
            _refuse(f"{_shown(parts)} is both a directory and a file")
        os.unlink(name, dir_fd=parent)

    def _file(self, parts: tuple[str, ...], member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        self.bytes += member.size
        if self.bytes > self.limits.max_bytes:
            _refuse(f"its files add up to more than {self.limits.max_bytes // MiB} MiB")
        parent = self._directory(parts[:-1], create=True)
        try:
            self._clear(parent, parts[-1], parts)
            mode = (member.mode & 0o755) | 0o600  # no setuid, setgid, sticky or shared write
            fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=parent)
            with open(fd, "wb") as out:
                source = archive.extractfile(member)
                assert source is not None
                shutil.copyfileobj(source, out, CHUNK)
                os.chmod(out.fileno(), mode)  # the umask may have taken bits off
                os.utime(out.fileno(), (member.mtime, member.mtime))
        finally:
            os.close(parent)

    def _symlink(self, parts: tuple[str, ...], target: str) -> None:
        if not target or "\x00" in target:
            _refuse(f"the link {_shown(parts)} has no target")
        if target.startswith("/"):
            _refuse(f"the link {_shown(parts)} points to an absolute path ({target[:100]})")
        if posixpath.normpath(posixpath.join(*parts[:-1], target)).split("/")[0] == "..":
            _refuse(f"the link {_shown(parts)} points out of the app's directory ({target[:100]})")
        parent = self._directory(parts[:-1], create=True)
        try:
            self._clear(parent, parts[-1], parts)
            os.symlink(target, parts[-1], dir_fd=parent)
        finally:
            os.close(parent)
        self.symlinks.append(parts)

    def _hardlink(self, parts: tuple[str, ...], target: str) -> None:
        source = self._parts(target)
        if not source:
            _refuse(f"the hard link {_shown(parts)} has no target")
        source_parent = self._directory(source[:-1], create=False)
        parent = self._directory(parts[:-1], create=True)
        try:
            try:
                found = os.stat(source[-1], dir_fd=source_parent, follow_symlinks=False)
            except FileNotFoundError:
                found = None
            if found is None or not stat.S_ISREG(found.st_mode):
                _refuse(f"the hard link {_shown(parts)} does not point to a file earlier in the archive")
            self._clear(parent, parts[-1], parts)
            os.link(source[-1], parts[-1], src_dir_fd=source_parent, dst_dir_fd=parent,
                    follow_symlinks=False)
        finally:
            os.close(parent)
            os.close(source_parent)


def _single_top_directory(staging: Path) -> str | None:
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0].name
    return None


def _check_symlinks_stay_inside(root: Path, symlinks: list[tuple[str, ...]]) -> None:
    """Each link resolved through the final tree (links to links, `..` after a link) stays inside."""
    real_root = os.path.realpath(root)
    for parts in symlinks:
        resolved = os.path.realpath(os.path.join(root, *parts))
        if resolved != real_root and not resolved.startswith(real_root + os.sep):
            _refuse(f"the link {_shown(parts)} resolves to a place outside the app's directory")


def _shown(parts: tuple[str, ...]) -> str:
    name = "/".join(parts)
    return repr(name if len(name) <= 120 else name[:120] + "…")


def _refuse(why: str) -> None:
    raise SourceError(f"The source archive was refused: {why}. {WHAT_NEXT}")
