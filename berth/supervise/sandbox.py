"""The one launcher of sandboxed processes: builds, release phase and dynos all start here.

A sandbox is bubblewrap (`bwrap`, run as an unprivileged account, never setuid) over the stack:

- the stack read-only at `/`, a private `/tmp`, a fresh `/proc` and a minimal `/dev`;
- the app at `/app` (read-write for builds, read-only for dynos), extra binds (CACHE_DIR, ENV_DIR) as
  asked; nothing else of the host: Berth's data dir and other apps' files do not exist inside;
- new user (with further user namespaces disabled), PID, IPC, UTS and cgroup namespaces; optionally
  a new network namespace (no network);
- a memory cgroup made by Berth before exec, and a time limit after which the whole tree is killed.

Berth, usually root, prepares the binds as root, assuming the tenant planted traps in what it wrote:
each bind source is opened without following a symlink in its last component, and its parent must not
be writable by the sandbox account (else a tenant could swap the directory for a symlink between the
check and bwrap's mount: bwrap 0.8 re-resolves even `--bind-fd` sources by path, as the account);
a writable tree is handed to the account through directory descriptors, never following a symlink
and leaving hard-linked files alone. bwrap runs as the account, so it needs search permission on the
sources' parents: Berth grants that bit, never read or write (`ServiceAccount.let_through`).
"""
from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import stat
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from .accounts import ServiceAccount, service_account
from .cgroups import CgroupUnavailable, MemoryCgroup, memory_cgroup, pids_cgroup
from .stack import is_built

__all__ = ["Bind", "SandboxSpec", "SandboxResult", "SandboxError", "Sandbox", "run", "sandbox_account",
           "DEFAULT_PATH"]

log = logging.getLogger(__name__)
ACCOUNT = "berth-sandbox"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Host files a sandbox with network needs for name resolution; bound read-only over the stack's.
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts")


class SandboxError(RuntimeError):
    """The sandbox could not be started; the message says why and what to do."""


@dataclass(frozen=True)
class Bind:
    """A host directory made visible inside the sandbox at `target` (absolute)."""

    source: Path
    target: str
    writable: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    stack: Path  # the stack's root filesystem (berth.supervise.stack.require_stack())
    app_dir: Path  # bound at /app
    argv: Sequence[str]
    account: ServiceAccount  # who runs inside (see sandbox_account)
    app_writable: bool = False  # builds: True; dynos: False (the slug's files)
    binds: Sequence[Bind] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    memory_limit: int | None = 512 * 1024 * 1024  # bytes; None = no limit asked for
    # When no memory cgroup can be made: refuse (True) or run unlimited with a warning (False).
    require_memory_limit: bool = True
    timeout: float | None = None  # seconds from start; then the whole tree is stopped
    stop_grace: float = 10.0  # seconds between SIGTERM and SIGKILL when stopping
    network: bool = True
    name: str = "sandbox"  # names the cgroup and the sandbox's hostname
    # At most this many processes and threads inside (a pids cgroup; refused where none can be made).
    pids_limit: int | None = None
    # An attached process (one-off dynos): this descriptor (a PTY's side or a socket) is its stdin,
    # stdout and stderr; `lines()` then has nothing to read. None: no stdin, output through a pipe.
    stdio: int | None = None


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int  # the program's status; 128+N when killed by signal N (137 = SIGKILL)
    timed_out: bool
    oom_killed: bool
    memory_limited: bool


def sandbox_account() -> ServiceAccount:
    """The account sandboxes run as: one shared, unprivileged `berth-sandbox` (see the README)."""
    return service_account(ACCOUNT)


class Sandbox:
    """A started sandbox. Read its merged stdout/stderr with `lines()`, then `wait()`; `stop()` ends
    it early. Use `run()` for the common start → stream → wait."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.warnings: list[str] = []
        self.cgroup: MemoryCgroup | None = None
        self.pids_cgroup: MemoryCgroup | None = None
        self.timed_out = False
        self._stopping = threading.Lock()
        self._finishing = threading.Lock()  # wait() and stop() may race from two threads
        self._info_read, self._info_write = os.pipe2(os.O_CLOEXEC)
        self._ns_init: int | None = None
        self._fds: list[int] = []
        self._result: SandboxResult | None = None
        try:
            self._start()
        except BaseException:
            self._release()
            os.close(self._info_read)
            for group in (self.cgroup, self.pids_cgroup):
                if group is not None:
                    group.remove()
            raise
        self.started = time.monotonic()

    # -- starting ----------------------------------------------------------------------------------

    def _start(self) -> None:
        spec = self.spec
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError("bubblewrap is not installed: run scripts/install-system-packages.sh")
        if not is_built(spec.stack):
            raise SandboxError(f"{spec.stack} is not a built stack: run scripts/build-stack.sh")
        stack = os.open(spec.stack, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds.append(stack)
        spec.account.let_through(spec.stack)
        argv = [bwrap, *self._namespaces(), "--ro-bind-fd", str(stack), "/",
                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        if spec.network:
            for path in NETWORK_FILES:
                if os.path.isfile(path) and (spec.stack / path.lstrip("/")).exists():
                    argv += ["--ro-bind", path, path]
        argv += self._identity()
        argv += self._bind(spec.app_dir, "/app", spec.app_writable)
        for extra in spec.binds:
            argv += self._bind(extra.source, extra.target, extra.writable)
        argv += ["--chdir", "/app", "--info-fd", str(self._info_write), "--", *spec.argv]
        self._limit_memory()
        self._limit_processes()
        joins = [group.join_before_exec() for group in (self.cgroup, self.pids_cgroup) if group]
        preexec = (lambda: [join() for join in joins]) if joins else None
        try:
            attached = spec.stdio is not None
            self.process = subprocess.Popen(
                argv, env=self._environment(), stdin=spec.stdio if attached else subprocess.DEVNULL,
                stdout=spec.stdio if attached else subprocess.PIPE,
                stderr=spec.stdio if attached else subprocess.STDOUT, pass_fds=(*self._fds, self._info_write), preexec_fn=preexec,
                start_new_session=True, **spec.account.popen_kwargs())
        except OSError as exc:
            raise SandboxError(f"bwrap could not start: {exc}") from exc
        finally:
            for group in (self.cgroup, self.pids_cgroup):
                if group:
                    group.joined()
            self._release()

    def _namespaces(self) -> list[str]:
        flags = ["--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--hostname", self.spec.name[:63] or "sandbox",
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if not self.spec.network:
            flags.append("--unshare-net")
        return flags

    def _identity(self) -> list[str]:
        """The stack's /etc/passwd and /etc/group plus the account, so `whoami`, `id` and tools that
        look up the user work (home /app, as on Heroku)."""
        account, argv = self.spec.account, []
        entries = {"passwd": f"{account.name}:x:{account.uid}:{account.gid}:Berth sandbox:/app:/bin/bash\n",
                   "group": f"{account.name}:x:{account.gid}:\n"}
        for name, entry in entries.items():
            path = self.spec.stack / "etc" / name
            known = path.read_text()
            if entry.split(":")[0] + ":" in known:
                continue
            argv += ["--ro-bind-data", str(self._data_fd(known + entry)), f"/etc/{name}"]
        return argv

    def _data_fd(self, text: str) -> int:
        """A descriptor bwrap reads `text` from (a pipe: a few hundred bytes fit its buffer)."""
        if len(text.encode()) > 60_000:  # would block on a full pipe before bwrap reads it
            raise SandboxError("the stack's /etc/passwd or /etc/group is too large to extend")
        read, write = os.pipe2(os.O_CLOEXEC)
        with os.fdopen(write, "w") as writer:
            writer.write(text)
        self._fds.append(read)
        return read

    def _bind(self, source: Path, target: str, writable: bool) -> list[str]:
        if not target.startswith("/") or ".." in Path(target).parts:
            raise SandboxError(f"bind target {target!r} must be an absolute path without '..'")
        fd = open_bind_source(source, self.spec.account)
        self._fds.append(fd)
        if writable:
            give_tree(fd, self.spec.account)
        return ["--bind-fd" if writable else "--ro-bind-fd", str(fd), target]

    def _limit_memory(self) -> None:
        spec = self.spec
        if spec.memory_limit is None:
            return
        name = f"{spec.name}-{uuid.uuid4().hex[:12]}"
        try:
            self.cgroup = memory_cgroup(name, spec.memory_limit)
        except CgroupUnavailable as exc:
            if spec.require_memory_limit:
                raise SandboxError(
                    f"cannot enforce the memory limit ({exc}): run Berth as root on a host with the "
                    "cgroup memory controller, or let this sandbox run without a limit "
                    "(require_memory_limit=False)") from exc
            warning = f"Warning: this process runs without a memory limit ({exc})."
            log.warning("sandbox %s: %s", spec.name, warning)
            self.warnings.append(warning)

    def _limit_processes(self) -> None:
        if self.spec.pids_limit is None:
            return
        name = self.cgroup.path.name if self.cgroup else f"{self.spec.name}-{uuid.uuid4().hex[:12]}"
        try:
            self.pids_cgroup = pids_cgroup(name, self.spec.pids_limit)
        except CgroupUnavailable as exc:
            raise SandboxError(f"cannot enforce the process limit ({exc}): run Berth as root on a host "
                               "with the cgroup pids controller, or ask for no process limit") from exc

    def _environment(self) -> dict[str, str]:
        """Only what the caller gave (config vars stay out of argv, so out of `ps`), over defaults."""
        base = {"PATH": DEFAULT_PATH, "HOME": "/app", "LANG": "C.UTF-8"}
        if self.spec.account.switches:
            base["USER"] = base["LOGNAME"] = self.spec.account.name
        return {**base, **self.spec.env}

    def _release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        if self._info_write >= 0:
            os.close(self._info_write)
            self._info_write = -1

    # -- running -----------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.process.pid

    def lines(self) -> Iterator[str]:
        """The sandbox's output, line by line (undecodable bytes replaced), until every process in it
        has closed its stdout."""
        if self.process.stdout is None:  # attached: the output went to spec.stdio
            return
        # The reader closes the pipe at its end, never _cleanup: the last lines may still be in it
        # (an unread pipe closes with the Popen object).
        try:
            for raw in self.process.stdout:
                yield raw.decode("utf-8", errors="replace").rstrip("\n")
        finally:
            self.process.stdout.close()

    def wait(self) -> SandboxResult:
        """Wait for the program to end, stopping the whole tree when the spec's time limit passes.
        Read `lines()` meanwhile (another thread), or a chatty program blocks on a full pipe."""
        remaining = None if self.spec.timeout is None else max(0.0, self.started + self.spec.timeout - time.monotonic())
        try:
            code = self.process.wait(remaining)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            return self.stop()
        return self._finish(code)

    def stop(self, grace: float | None = None) -> SandboxResult:
        """SIGTERM every process in the sandbox, SIGKILL the whole tree after `grace` seconds (the
        kernel kills a PID namespace with its init), clean up, and return how it ended."""
        grace = self.spec.stop_grace if grace is None else grace
        with self._stopping:
            if self.process.poll() is not None:
                return self._finish(self.process.returncode)
            init = self.namespace_init()
            for pid in self.members(init):
                if pid not in (init, self.process.pid):  # bwrap itself: its death kills all at once
                    _signal(pid, signal.SIGTERM)
            try:
                return self._finish(self.process.wait(grace))
            except subprocess.TimeoutExpired:
                pass
            if init is not None:
                _signal(init, signal.SIGKILL)
            _signal(self.process.pid, signal.SIGKILL)
            return self._finish(self.process.wait())

    def namespace_init(self) -> int | None:
        """Host PID of the sandbox's PID 1 (bwrap's init), from bwrap's --info-fd report."""
        if self._ns_init is None and self._info_read >= 0:
            ready, _, _ = select.select([self._info_read], [], [], 2.0)
            data = os.read(self._info_read, 4096) if ready else b""
            try:
                self._ns_init = int(json.loads(data)["child-pid"])
            except (ValueError, KeyError, TypeError):
                return None
        return self._ns_init

    def members(self, init: int | None = None) -> list[int]:
        """Host PIDs of every process in the sandbox: those in its memory cgroup, or else those whose
        PID namespace is the sandbox's."""
        if self.cgroup is not None:
            return self.cgroup.pids()
        init = init or self.namespace_init()
        if init is None:
            return []
        try:
            namespace = os.readlink(f"/proc/{init}/ns/pid")
        except OSError:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                        found.append(int(entry))
                except OSError:
                    continue
        return found

    def _finish(self, code: int) -> SandboxResult:
        """Once: read the cgroup's verdict, empty and remove it, close what is left open."""
        with self._finishing:
            if self._result is None:
                self._result = self._cleanup(code)
            return self._result

    def _cleanup(self, code: int) -> SandboxResult:
        oom = False
        if self.cgroup is not None:
            oom = self.cgroup.oom_kills() > 0
            self.cgroup.kill_all()
            self.cgroup.remove()
        if self.pids_cgroup is not None:
            self.pids_cgroup.kill_all()
            self.pids_cgroup.remove()
        if self._info_read >= 0:
            os.close(self._info_read)
            self._info_read = -1
        return SandboxResult(exit_code=code if code >= 0 else 128 - code, timed_out=self.timed_out,
                             oom_killed=oom, memory_limited=self.cgroup is not None)


def run(spec: SandboxSpec, on_line: Callable[[str], None],
        on_start: Callable[[Sandbox], None] | None = None) -> SandboxResult:
    """Start a sandbox, hand every output line (warnings first) to `on_line`, wait for its end;
    `on_start` sees the started sandbox first (a caller that may stop it early keeps it)."""
    sandbox = Sandbox(spec)
    if on_start is not None:
        on_start(sandbox)
    for warning in sandbox.warnings:
        on_line(f" !     {warning}")
    reader = threading.Thread(target=lambda: [on_line(line) for line in sandbox.lines()], daemon=True,
                              name=f"sandbox-{spec.name}-output")
    reader.start()  # an attached sandbox's reader ends at once
    try:
        result = sandbox.wait()
    except BaseException:
        sandbox.stop(0)
        raise
    reader.join(timeout=10)
    return result


def open_bind_source(path: Path, account: ServiceAccount) -> int:
    """A descriptor on directory `path` for a bind: its last component must not be a symlink and
    its parent (Berth's own, resolved as it is) must not be writable by `account`."""
    parent_path = os.path.realpath(path.parent)
    parent = os.open(parent_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        found = os.fstat(parent)
        if account.switches and (found.st_uid == account.uid or found.st_mode & 0o022):
            raise SandboxError(f"refusing to bind {path}: its parent {parent_path} is writable by "
                               f"{account.name} or others; keep sandbox dirs in a directory only Berth writes")
        try:
            fd = os.open(path.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as exc:
            raise SandboxError(f"refusing to bind {path}: {exc.strerror} (it must be a real directory, "
                               "not a symlink)") from exc
    finally:
        os.close(parent)
    account.let_through(Path(parent_path))
    return fd


def give_tree(directory_fd: int, account: ServiceAccount) -> None:
    """Hand the tree under `directory_fd` to `account`, walking by descriptors: a symlink is changed
    itself (never its target), and a file with several hard links is left alone, since its other
    name may be outside the tree."""
    if not account.switches:
        return
    uid, gid = account.uid, account.gid
    if os.fstat(directory_fd).st_uid != uid:
        os.fchown(directory_fd, uid, gid)
    for _, dirnames, filenames, dir_fd in os.fwalk(".", dir_fd=directory_fd, follow_symlinks=False):
        for name in (*dirnames, *filenames):
            found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if found.st_uid == uid:
                continue
            if found.st_nlink > 1 and not stat.S_ISDIR(found.st_mode):
                log.warning("sandbox: not handing over %s (hard-linked)", name)
                continue
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
