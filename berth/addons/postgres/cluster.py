"""Create and run a local PostgreSQL cluster bound to a loopback port.

Used by the test fixtures to start a real control-plane database, and by the
Postgres add-on to manage clusters that live on this host. The server only
listens on 127.0.0.1 and its Unix socket lives inside the data directory, so
clusters never collide with a system-wide PostgreSQL or with each other.

PostgreSQL refuses to run as root, and Berth never runs a server as root. When
we are root (CI, containers) every server tool runs as the cluster's own
unprivileged service account (``berth.supervise.accounts``: ``berth-postgres``
unless the caller names another, e.g. one per dedicated cluster), and the data
directory (0700) is that account's alone: a tenant who reaches the server's OS
user (``COPY … TO PROGRAM`` as superuser) reaches no other cluster's files.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Mapping
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from berth.supervise import files, processes
from berth.supervise.accounts import ServiceAccount, service_account
from berth.supervise.ports import LOOPBACK, free_loopback_port

__all__ = ["ClusterError", "LocalPostgres", "PortInUse", "find_postgres_bindir"]

log = logging.getLogger(__name__)

DATABASE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
STOP_MODES = ("smart", "fast", "immediate")
DEFAULT_ACCOUNT = "berth-postgres"

# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
# pg_ctl pastes -D and -l into a /bin/sh command line inside double quotes, so
# these characters in a path would be interpreted by the shell.
_SHELL_UNSAFE = frozenset('"$`\\\n')


class ClusterError(RuntimeError):
    """A local PostgreSQL cluster could not be located, created, started or stopped."""


def find_postgres_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres.

    Order: $BERTH_PG_BINDIR, the newest Debian /usr/lib/postgresql/*/bin, then PATH.
    """
    override = os.environ.get("BERTH_PG_BINDIR")
    if override:
        bindir = Path(override)
        if not (bindir / "initdb").is_file():
            raise ClusterError(f"BERTH_PG_BINDIR={override} does not contain initdb")
        return bindir
    debian = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if debian:
        return max(debian, key=lambda bindir: _version_key(bindir.parent.name))
    # Debian puts only wrappers on PATH, but other distributions and Homebrew
    # link the real tools; resolve the link to find their sibling binaries.
    on_path = shutil.which("initdb") or shutil.which("pg_ctl")
    if on_path and (Path(on_path).resolve().parent / "initdb").is_file():
        return Path(on_path).resolve().parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them with "
        "`apt-get install postgresql` (or scripts/install-system-packages.sh), "
        "or point BERTH_PG_BINDIR at the directory that contains initdb."
    )


def _version_key(name: str) -> tuple[int, ...]:
    # "9.6" < "15" < "16"; anything unparsable sorts first.
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


class PortInUse(ClusterError):
    """Another process took the cluster's port before the server could bind it."""


class LocalPostgres:
    """A PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``."""

    start_timeout: float = 30.0
    stop_timeout: float = 30.0
    port_attempts: int = 5

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        superuser: str = "berth",
        password: str | None = None,
        settings: Mapping[str, str] | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        """``settings``: server settings (``-c name=value``) given on every start; ``account``:
        the service account the server runs as when we are root (created on first use)."""
        # Absolute because the tools run with cwd=/ (root's cwd may be unreadable to postgres).
        self.data_dir = Path(data_dir).absolute()
        if _SHELL_UNSAFE & set(str(self.data_dir)):
            raise ClusterError(
                f"data directory path contains characters pg_ctl cannot quote: {self.data_dir!r}"
            )
        self.superuser = superuser
        # Beside the data, not inside it: initdb insists on an empty directory.
        self.password_file = self.data_dir.with_name(self.data_dir.name + ".password")
        self.log_file = self.data_dir / "postgresql.log"
        self.socket_dir = self.data_dir / "sockets"
        self._auto_port = port is None
        self._port = free_loopback_port() if port is None else port
        if password is not None and ("\n" in password or not password):
            raise ValueError("password must be non-empty and a single line (initdb reads one line)")
        self._explicit_password = password is not None
        self._password = password if password is not None else self._read_password_file()
        self._bindir: Path | None = None
        self._settings = dict(settings or {})
        self.account_name = account
        self._account: ServiceAccount | None = None

    def __repr__(self) -> str:  # never include the password
        return f"LocalPostgres(data_dir={str(self.data_dir)!r}, port={self._port})"

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return LOOPBACK

    def admin_url(self, dbname: str = "postgres") -> str:
        user = quote(self.superuser, safe="")
        password = quote(self._password, safe="")
        return f"postgresql://{user}:{password}@{self.host}:{self._port}/{quote(dbname, safe='')}"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Create the cluster on first use, start it, and wait until it accepts logins."""
        if self.is_running():
            # Started earlier (maybe by another instance): adopt its real port.
            self._port = self._running_port() or self._port
            self._wait_until_connectable()
            return
        self._prepare_directories()
        if not self.initialized:
            self._initdb()
        self._prepare_socket_dir()
        for attempt in range(1, self.port_attempts + 1):
            try:
                self._pg_ctl_start()
                break
            except PortInUse:
                # Someone grabbed the port between choosing and binding it.
                if not self._auto_port or attempt == self.port_attempts:
                    raise
                log.info("port %d taken, retrying PostgreSQL start on another port", self._port)
                self._port = free_loopback_port()
        self._wait_until_connectable()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; a no-op when it is not running (or already died)."""
        if mode not in STOP_MODES:
            raise ValueError(f"stop mode must be one of {STOP_MODES}, not {mode!r}")
        if not self.is_running():
            return
        timeout = str(int(self.stop_timeout))
        result = self._run(
            ["pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", timeout]
        )
        # pg_ctl also fails when the server exits on its own mid-stop; that is fine.
        if result.returncode != 0 and self.is_running():
            raise ClusterError(f"pg_ctl stop failed: {result.stdout}{result.stderr}".strip())

    def is_running(self) -> bool:
        if not self.initialized:
            return False
        self._adopt()
        # Exit status 0 = running, 3 = not running (including a stale postmaster.pid), 4 = the
        # data directory is not this account's to read: say so rather than call it stopped.
        status = self._run(["pg_ctl", "status", "-D", str(self.data_dir)])
        if status.returncode == 4:
            raise ClusterError(f"{self.data_dir} is not readable by {self.account.name}, the account "
                               f"this cluster runs as: {status.stdout}{status.stderr}".strip())
        return status.returncode == 0

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- TLS ---------------------------------------------------------------

    def use_tls(self, cert_pem: str, key_pem: str) -> None:
        """Serve TLS with this certificate chain and key (kept as `server.crt`/`server.key` in the
        data directory, the server's defaults, owned by the server's user, 0600), switched on with
        ALTER SYSTEM (so every later start has it too) and a reload; the running server must then
        accept `sslmode=require`. Clients that ask for no TLS are still served: that is pg_hba's
        business, not this switch's."""
        for name, text in (("server.crt", cert_pem), ("server.key", key_pem)):
            # The data directory is the server account's: never follow a link it may have planted.
            # A fresh 0600 file: the server refuses a key others may read.
            files.write_owned(self.data_dir / name, text, self.account)
        with self._admin_connection() as conn:
            conn.execute("ALTER SYSTEM SET ssl = on")
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + self.start_timeout
        while True:  # the reload is asynchronous: wait until a TLS login works
            try:
                with psycopg.connect(self.admin_url(), sslmode="require", connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise ClusterError(f"PostgreSQL on {self.host}:{self._port} did not turn TLS on: "
                                       f"{exc}{_tail(self._read_log())}") from exc
                time.sleep(0.1)

    @property
    def has_certificate(self) -> bool:
        return (self.data_dir / "server.crt").is_file() and (self.data_dir / "server.key").is_file()

    # -- databases ---------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return a superuser URL for it."""
        _check_database_name(name)
        with self._admin_connection() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.admin_url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, terminating any sessions still connected to it."""
        _check_database_name(name)
        with self._admin_connection() as conn:
            # FORCE terminates the sessions still connected instead of failing.
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))

    def _admin_connection(self) -> psycopg.Connection[TupleRow]:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        return psycopg.connect(self.admin_url(), autocommit=True, connect_timeout=10)

    # -- setup steps -------------------------------------------------------

    @property
    def account(self) -> ServiceAccount:
        """Who the server runs as (Berth's own user when Berth is not root)."""
        if self._account is None:
            try:
                self._account = service_account(self.account_name)
            except (RuntimeError, ValueError) as error:
                raise ClusterError(f"no service account for PostgreSQL: {error}") from error
        return self._account

    def _prepare_directories(self) -> None:
        owner = self.account
        created_mode = 0o711 if owner.switches else 0o700  # the account must traverse root's dirs
        files.make_dirs(self.data_dir.parent, created_mode)
        if owner.switches and owner.entry is not None:
            owner.let_through(self.data_dir.parent)
        if not self.data_dir.exists():
            self.data_dir.mkdir(mode=0o700)
        if not self.initialized:
            owner.own(self.data_dir, 0o700)
        self._ensure_password_file(owner)

    def _adopt(self) -> None:
        """A cluster made under another account (Debian's `postgres`, before Berth had accounts of
        its own) is stopped as that account, then its files are handed to this cluster's account."""
        account = self.account
        found = self.data_dir.stat()
        if not account.switches or found.st_uid == account.uid:
            return
        log.warning("handing the PostgreSQL cluster in %s from uid %d to %s", self.data_dir, found.st_uid,
                    account.name)
        if found.st_uid != 0:  # root cannot have run it; any other owner may be running it now
            if self._bindir is None:
                self._bindir = find_postgres_bindir()
            subprocess.run([str(self._bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
                            "-t", str(int(self.stop_timeout))], cwd="/", stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=self.stop_timeout + 30, check=False,
                           user=found.st_uid, group=found.st_gid, extra_groups=[],
                           env={**processes.without_berth_settings(os.environ), "HOME": "/nonexistent",
                                "LC_ALL": "C"})
        account.own_tree(self.data_dir)
        if self.password_file.exists():
            account.own(self.password_file)

    def _ensure_password_file(self, owner: ServiceAccount) -> None:
        if self.password_file.exists():
            return
        if self.initialized and not self._explicit_password:
            raise ClusterError(
                f"cluster in {self.data_dir} exists but {self.password_file} is missing; "
                "pass the superuser password explicitly"
            )
        # O_EXCL + 0600 so the secret is never readable by others, not even briefly.
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self._password + "\n")
        owner.own(self.password_file)  # initdb, running as the account, reads it via --pwfile

    def _read_password_file(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            # A fresh secret; start() persists it before initdb uses it.
            return secrets.token_urlsafe(32)

    def _initdb(self) -> None:
        result = self._run(
            [
                "initdb",
                "-D", str(self.data_dir),
                "-U", self.superuser,
                f"--pwfile={self.password_file}",
                # Password auth on TCP and on the socket: the superuser has no
                # matching OS account, so peer auth would only lock us out.
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E", "UTF8",
                f"--locale={_pick_locale()}",
            ]
        )  # fmt: skip
        if result.returncode != 0:
            output = f"{result.stdout}{result.stderr}".strip()
            raise ClusterError(f"initdb failed for {self.data_dir}:\n{output}")

    def _prepare_socket_dir(self) -> None:
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.account.own(self.socket_dir)

    def _server_options(self) -> str:
        socket_dirs = f'"{self.socket_dir}"'  # quoted: the setting is a comma-separated list
        if len(str(self.socket_dir / f".s.PGSQL.{self._port}.lock")) > _MAX_SOCKET_PATH:
            # Too long for a Unix socket; we only use TCP, so run without one.
            log.warning("socket path under %s too long; disabling the Unix socket", self.socket_dir)
            socket_dirs = ""
        options = [
            "-c", f"listen_addresses={LOOPBACK}",
            "-p", str(self._port),
            "-c", f"unix_socket_directories={socket_dirs}",
            *(word for name, value in self._settings.items() for word in ("-c", f"{name}={value}")),
        ]  # fmt: skip
        # pg_ctl hands -o to /bin/sh, so every word must be shell-quoted.
        return " ".join(shlex.quote(option) for option in options)

    def _pg_ctl_start(self) -> None:
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        result = self._run(
            [
                "pg_ctl", "start", "-w",
                "-t", str(int(self.start_timeout)),
                "-D", str(self.data_dir),
                "-l", str(self.log_file),
                "-o", self._server_options(),
            ]
        )  # fmt: skip
        if result.returncode == 0:
            return
        new_log = self._read_log(log_offset)
        output = f"{result.stdout}{result.stderr}".strip()
        message = f"PostgreSQL failed to start on port {self._port}:\n{output}{_tail(new_log)}"
        if "Address already in use" in new_log:
            raise PortInUse(message)
        raise ClusterError(message)

    def _wait_until_connectable(self) -> None:
        # pg_ctl -w only proves the postmaster is up; a real login also proves
        # TCP, pg_hba and the password all work.
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with psycopg.connect(self.admin_url(), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if "authentication failed" in str(exc) or time.monotonic() >= deadline:
                    where = f"{self.host}:{self._port}"
                    raise ClusterError(
                        f"cannot log in to PostgreSQL on {where}: {exc}{_tail(self._read_log())}"
                    ) from exc
                time.sleep(0.1)

    # -- helpers -----------------------------------------------------------

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the cluster's service account when we are root."""
        if self._bindir is None:
            self._bindir = find_postgres_bindir()
        # Server messages are matched (port clash), so keep them untranslated.
        return processes.run([str(self._bindir / argv[0]), *argv[1:]], self.account, cwd="/",
                             env={**os.environ, "LC_ALL": "C"}, timeout=self.start_timeout + 30)

    def _running_port(self) -> int | None:
        # Line 4 of postmaster.pid is the port the server actually listens on.
        try:
            return int(self.data_dir.joinpath("postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            return None

    def _read_log(self, offset: int = 0) -> str:
        # The file lies in the server account's directory: a symlink planted there must not make
        # Berth (root) copy another file into its error messages.
        return files.read_regular(self.log_file, offset)


def _check_database_name(name: str) -> None:
    if not DATABASE_NAME_RE.match(name):
        raise ValueError(f"invalid database name {name!r}: must match {DATABASE_NAME_RE.pattern}")


def _pick_locale() -> str:
    # C.UTF-8 classifies non-ASCII characters properly and, like C, sorts by
    # code point, so indexes survive glibc upgrades. Not every system has it.
    try:
        listing = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    except OSError:
        return "C"
    names = {line.strip().lower().replace("-", "") for line in listing.stdout.splitlines()}
    return "C.UTF-8" if "c.utf8" in names else "C"


def _tail(text: str, lines: int = 20) -> str:
    tail = files.tail(text, lines)
    return "\n--- server log (tail) ---\n" + tail if tail else ""
