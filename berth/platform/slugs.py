"""Slugs as files: a built /app packed into a gzip tar, its checksum, Heroku's size limits,
`.slugignore`, and a safe unpack for the dyno runner.

A slug keeps the app under a top-level `app/` directory, as Heroku's API-uploaded slugs do, so
that built and uploaded slugs are one format; unpack takes only what is under `app/`.
The build dir and any uploaded tarball are the tenant's: packing never follows a symlink or
reads a device, and unpacking never writes outside its destination nor through a link.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import pathspec

MB = 1024 * 1024
SOFT_LIMIT_BYTES = 300 * MB
HARD_LIMIT_BYTES = 1024 * MB
CHECKSUM_PATTERN = re.compile(r"^SHA256:[0-9a-f]{64}\Z")
PREFIX = "app"  # the top-level directory of a slug's runnable app
_CHUNK = 1024 * 1024


class SlugError(Exception):
    """A slug cannot be made, stored or used; the message is for the user (build output, API)."""


class ChecksumMismatch(SlugError):
    pass


class SlugTooLarge(SlugError):
    pass


class UnsafeSlug(SlugError):
    pass


# ---- checksums and limits ----------------------------------------------------------------

def checksum_of_stream(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return "SHA256:" + digest.hexdigest()


def checksum_of(path: Path) -> str:
    with open(path, "rb") as stream:
        return checksum_of_stream(stream)


def normalise_checksum(text: str) -> str:
    """`SHA256:<hex>` with lower-case hex; SlugError for anything else."""
    normal = "SHA256:" + text[7:].lower() if text[:7].upper() == "SHA256:" else text
    if not CHECKSUM_PATTERN.match(normal):
        raise SlugError(f"Not a slug checksum: {text[:80]!r} (expected SHA256:<64 hex digits>).")
    return normal


def verify_checksum(actual: str, expected: str | None) -> None:
    """ChecksumMismatch unless `expected` (when given) is `actual` (lower-case hex, as computed)."""
    if expected is not None and actual != normalise_checksum(expected):
        raise ChecksumMismatch(f"Checksum mismatch: expected {expected}, got {actual}. The slug was "
                               "altered or truncated: upload or build it again.")


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f}M"


def size_warning(size: int, soft_limit: int = SOFT_LIMIT_BYTES) -> str | None:
    """Heroku's warning for a slug above the soft limit (it may slow boot), or None."""
    if size <= soft_limit:
        return None
    return (f"Warning: Your slug size ({size // MB} MB) exceeds our soft limit ({soft_limit // MB} MB) "
            "which may affect boot time.")


def check_size(size: int, hard_limit: int = HARD_LIMIT_BYTES) -> None:
    """SlugTooLarge, in Heroku's words, above the hard limit."""
    if size > hard_limit:
        raise SlugTooLarge(f"Compiled slug size: {_megabytes(size)} is too large "
                           f"(max is {_limit_text(hard_limit)}).")


def _limit_text(limit: int) -> str:
    return f"{limit // 1024 // MB}G" if limit % (1024 * MB) == 0 else f"{limit // MB}M"


# ---- .slugignore -------------------------------------------------------------------------

@dataclass
class Slugignored:
    removed: list[str] = field(default_factory=list)   # relative paths deleted, top-most only
    warnings: list[str] = field(default_factory=list)  # lines that mean nothing in a .slugignore


def apply_slugignore(build_dir: Path) -> Slugignored:
    """Delete what the top-level `.slugignore` names (gitignore patterns without `!` negation,
    which Heroku does not support: such lines are reported and skipped) before compile.
    Never follows a symlink: a link matching a pattern is removed itself, not its target."""
    result = Slugignored()
    ignore_file = build_dir / ".slugignore"
    if ignore_file.is_symlink() or not ignore_file.is_file():
        if ignore_file.is_symlink():
            result.warnings.append(".slugignore is a symlink: ignored.")
        return result
    lines = []
    for number, line in enumerate(ignore_file.read_text(errors="replace").splitlines(), 1):
        if line.lstrip().startswith("!"):
            result.warnings.append(f".slugignore line {number}: negation ({line.strip()}) is not "
                                   "supported and was skipped.")
            continue
        lines.append(line)
    spec = pathspec.PathSpec.from_lines("gitignore", lines)
    for relative, is_dir in _walk(build_dir):
        if spec.match_file(relative + "/" if is_dir else relative):
            _remove(build_dir / relative)
            result.removed.append(relative)
    return result


def _walk(root: Path) -> Iterator[tuple[str, bool]]:
    """(relative path, is a real directory) top-down; a matched directory is not descended
    into by the caller deleting it first (we re-check existence)."""
    pending = [""]
    while pending:
        base = pending.pop()
        directory = root / base if base else root
        if not directory.exists():
            continue
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                relative = f"{base}/{entry.name}" if base else entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                yield relative, is_dir
                if is_dir and os.path.lexists(root / relative):
                    pending.append(relative)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # rmtree never follows symlinks inside the tree
    elif os.path.lexists(path):
        path.unlink()


# ---- pack ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackedSlug:
    path: Path
    checksum: str
    size: int
    warnings: tuple[str, ...]


# Measured on a 33 MB Python virtualenv: level 4 costs 0.67 s of CPU for 14.8 MB, level 6 (gzip's
# default) 1.50 s for 14.3 MB: 3% more bytes for less than half the time of every deploy.
COMPRESS_LEVEL = 4


def pack(build_dir: Path, destination: Path, *, hard_limit: int = HARD_LIMIT_BYTES,
         soft_limit: int = SOFT_LIMIT_BYTES) -> PackedSlug:
    """A gzip tar of `build_dir` under `app/`, `.git` left out; directories, regular files and
    symlinks only (sockets, FIFOs and devices a build left are skipped). Over the hard limit the
    tarball is deleted and SlugTooLarge raised.

    Compression is most of a build's packing time: with Debian's `pigz` it runs beside the tar
    writer on every core (one ordinary gzip member, which any `tar xz` reads), else in-process.
    The checksum is taken as the tarball is written, not by reading it back."""
    try:
        with open(destination, "xb") as raw:
            sink = _BoundedSink(raw, hard_limit)
            pigz = shutil.which("pigz")
            if pigz:
                _pack_through(pigz, build_dir, sink)
            else:
                with tarfile.open(fileobj=sink, mode="w:gz", compresslevel=COMPRESS_LEVEL,  # type: ignore[call-overload]
                                  format=tarfile.GNU_FORMAT) as tar:
                    _add_tree(tar, build_dir)
        size = sink.size
        check_size(size, hard_limit)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    warning = size_warning(size, soft_limit)
    return PackedSlug(destination, "SHA256:" + sink.digest.hexdigest(), size, (warning,) if warning else ())


def _add_tree(tar: tarfile.TarFile, build_dir: Path) -> None:
    tar.addfile(_directory_info(PREFIX, os.lstat(build_dir)))
    for relative in _packable(build_dir):
        _add(tar, build_dir, relative)


def _pack_through(pigz: str, build_dir: Path, sink: "_BoundedSink") -> None:
    """The tar stream written into `pigz`, its output copied into `sink` by a thread of its own."""
    process = subprocess.Popen([pigz, f"-{COMPRESS_LEVEL}", "--no-name", "-c"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    output = process.stdout
    copier = threading.Thread(target=lambda: _copy(output, sink), name="slug-pack-copy", daemon=True)
    copier.start()
    try:
        with tarfile.open(fileobj=process.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            _add_tree(tar, build_dir)
        process.stdin.close()
        code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        copier.join()
    if code != 0:
        raise SlugError(f"Compressing the slug failed (pigz exited with {code}).")


def _copy(source: BinaryIO, sink: "_BoundedSink") -> None:
    while chunk := source.read(_CHUNK):
        sink.write(chunk)


class _BoundedSink:
    """Writes the tarball until it passes the hard limit, then only counts: the disk never holds
    more than the limit, yet the refusal can still say the slug's size, as Heroku's does. It
    hashes what it is given."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self.raw, self.limit, self.size = raw, limit, 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.digest.update(data)
        if self.size <= self.limit:
            self.raw.write(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def _packable(root: Path) -> Iterator[str]:
    for relative, _is_dir in _walk(root):
        if relative == ".git" or relative.startswith(".git/"):
            continue
        yield relative


def _directory_info(name: str, info: os.stat_result) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, stat.S_IMODE(info.st_mode) & 0o777, int(info.st_mtime)
    return entry


def _add(tar: tarfile.TarFile, root: Path, relative: str) -> None:
    path = root / relative
    name = f"{PREFIX}/{relative}"
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode):
        tar.addfile(_directory_info(name, info))
    elif stat.S_ISLNK(info.st_mode):
        entry = tarfile.TarInfo(name)
        entry.type, entry.linkname, entry.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
        tar.addfile(entry)
    elif stat.S_ISREG(info.st_mode):
        # O_NOFOLLOW: a file swapped for a link after lstat is refused, never read through.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as stream:
            opened = os.fstat(stream.fileno())
            if not stat.S_ISREG(opened.st_mode):
                return
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode, entry.mtime = opened.st_size, stat.S_IMODE(opened.st_mode) & 0o777, int(opened.st_mtime)
            tar.addfile(entry, stream)


# ---- unpack --------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnpackLimits:
    max_bytes: int = 4 * 1024 * MB   # uncompressed: a gzip bomb stops here
    max_members: int = 200_000


def unpack(stream: BinaryIO, destination: Path, limits: UnpackLimits = UnpackLimits(), *,
           links_anywhere: bool = False) -> int:
    """Extract the `app/` tree of a slug read from `stream` into the empty (or new) directory
    `destination`; the number of bytes written. Refused (UnsafeSlug, and `destination` emptied):
    absolute names, `..`, links that leave the tree, hard links to anything but an earlier file,
    devices and FIFOs, duplicate names, more than the limits. Never writes through a symlink.

    `links_anywhere`: keep symlinks whatever they point at, for a tree that becomes a sandbox's
    /app, where they resolve against the stack (a Python virtualenv's `bin/python3.11 ->
    /usr/bin/python3.11`); Berth never follows them on the host (unpacking, handing the tree
    over and removing it all work without following links)."""
    destination.mkdir(mode=0o755, exist_ok=True)
    if any(destination.iterdir()):
        raise UnsafeSlug(f"{destination} is not empty: a slug is unpacked into an empty directory.")
    root_fd = os.open(destination, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        return _extract_all(stream, root_fd, limits, links_anywhere)
    except BaseException:
        _empty(destination)
        raise
    finally:
        os.close(root_fd)


def _empty(directory: Path) -> None:
    for child in list(directory.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _member_path(name: str) -> list[str] | None:
    """The path under `app/` as components; None for members outside `app/` (ignored)."""
    if name.startswith("/"):
        raise UnsafeSlug(f"Slug entry {name!r} has an absolute path.")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeSlug(f"Slug entry {name!r} leaves the app directory (..).")
    if not parts or parts[0] != PREFIX:
        return None
    return parts[1:]


def _link_stays_inside(parts: list[str], target: str) -> bool:
    if not target or target.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join("/".join(["."] + parts[:-1]), target))
    return resolved != ".." and not resolved.startswith("../") and not resolved.startswith("/")


def _extract_all(stream: BinaryIO, root_fd: int, limits: UnpackLimits, links_anywhere: bool) -> int:
    written = members = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                members += 1
                if members > limits.max_members:
                    raise UnsafeSlug(f"Slug has more than {limits.max_members} entries.")
                parts = _member_path(member.name)
                if parts is None or not parts:
                    continue  # outside app/, or app/ itself
                if member.isfile():
                    written += member.size
                    if written > limits.max_bytes:
                        raise UnsafeSlug(f"Slug unpacks to more than {limits.max_bytes // MB} MB.")
                    source = tar.extractfile(member)
                    assert source is not None
                    _write_file(root_fd, parts, source, member.mode)
                elif member.isdir():
                    _make_dirs(root_fd, parts, member.mode)
                elif member.issym():
                    if not links_anywhere and not _link_stays_inside(parts, member.linkname):
                        raise UnsafeSlug(f"Slug entry {member.name!r} links outside the app "
                                         f"directory ({member.linkname}).")
                    parent = _open_parent(root_fd, parts)
                    try:
                        os.symlink(member.linkname, parts[-1], dir_fd=parent)
                    except FileExistsError:
                        raise UnsafeSlug(f"Slug entry {member.name!r} appears twice.") from None
                    finally:
                        os.close(parent)
                elif member.islnk():
                    _hard_link(root_fd, parts, member)
                else:
                    raise UnsafeSlug(f"Slug entry {member.name!r} is a device, FIFO or other special "
                                     "file; slugs hold only files, directories and links.")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise UnsafeSlug(f"Slug is not a valid gzip tarball: {error}.") from None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
            raise UnsafeSlug("Slug entry would be written through a link or over another entry "
                             f"({error.strerror}).") from None
        raise
    return written


def _open_parent(root_fd: int, parts: list[str], mode: int = 0o755) -> int:
    """The directory holding `parts[-1]`, made as needed, reached component by component with
    O_NOFOLLOW: a symlink on the way is refused (ELOOP/ENOTDIR), never followed."""
    fd = os.dup(root_fd)
    try:
        for component in parts[:-1]:
            try:
                os.mkdir(component, mode, dir_fd=fd)
            except FileExistsError:
                pass
            next_fd = os.open(component, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _make_dirs(root_fd: int, parts: list[str], mode: int) -> None:
    parent = _open_parent(root_fd, parts)
    try:
        try:
            os.mkdir(parts[-1], 0o755, dir_fd=parent)
        except FileExistsError:
            pass
        fd = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        try:
            os.fchmod(fd, (mode & 0o777) | 0o700)
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def _write_file(root_fd: int, parts: list[str], source: BinaryIO, mode: int) -> None:
    parent = _open_parent(root_fd, parts)
    try:
        fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent)
    except FileExistsError:
        os.close(parent)
        raise UnsafeSlug(f"Slug entry {'/'.join([PREFIX, *parts])!r} appears twice.") from None
    os.close(parent)
    with os.fdopen(fd, "wb") as target:
        while chunk := source.read(_CHUNK):
            target.write(chunk)
        os.fchmod(target.fileno(), mode & 0o777)  # no setuid, setgid or sticky bits


def _hard_link(root_fd: int, parts: list[str], member: tarfile.TarInfo) -> None:
    target = _member_path(member.linkname) if not member.linkname.startswith("/") else None
    if not target:
        raise UnsafeSlug(f"Slug entry {member.name!r} is a hard link outside the app directory "
                         f"({member.linkname}).")
    source_parent = _open_parent(root_fd, target)
    parent = _open_parent(root_fd, parts)
    try:
        info = os.stat(target[-1], dir_fd=source_parent, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeSlug(f"Slug entry {member.name!r} is a hard link to something not a file.")
        os.link(target[-1], parts[-1], src_dir_fd=source_parent, dst_dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        raise UnsafeSlug(f"Slug entry {member.name!r} links to {member.linkname}, which comes "
                         "later or not at all.") from None
    finally:
        os.close(source_parent)
        os.close(parent)
