"""Run nginx as the router: as an unprivileged account, configured from a routing table, the
new configuration checked (`nginx -t`) before it replaces the old one atomically and is applied
with SIGHUP, nginx's graceful reload (old workers finish their requests; no request is dropped).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

from berth import certificates
import http.client

from berth.platform.router.nginx_config import GENERATION_PATH, RouterLayout, render
from berth.platform.router.table import RoutingTable
from berth.supervise import processes
from berth.supervise.accounts import ServiceAccount, service_account
from berth.supervise.ports import listening
from berth.supervise.readiness import wait_until

ACCOUNT = "berth-router"
log = logging.getLogger(__name__)


class RouterError(RuntimeError):
    """nginx is missing, refused a configuration, or did not start."""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        raise RouterError("nginx is not installed: run scripts/install-system-packages.sh")
    return found


class NginxRouter:
    """One nginx under `layout.prefix`. `apply(table)` writes and reloads; `ensure_running()` is
    the supervisor's hook: it starts nginx when it is not running (after a crash or a reboot)."""

    def __init__(self, layout: RouterLayout, ca: certificates.CertificateAuthority, apps_domain: str,
                 account: ServiceAccount | None = None) -> None:
        self.layout = layout
        self.ca = ca
        self.apps_domain = apps_domain
        self.account = account or service_account(ACCOUNT)
        self.table = RoutingTable()
        self._certified: tuple[str, ...] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._generation = 0

    # -- files ---------------------------------------------------------------------------------

    def _prepare(self) -> None:
        prefix = self.layout.prefix
        for directory in (prefix, prefix / "logs", prefix / "temp", prefix / "tls"):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.account.own(directory, 0o700)
        self.account.let_through(prefix)

    def _certify(self, hosts: list[str]) -> None:
        """A certificate for `*.<apps domain>` and every custom domain, reissued when they change."""
        names = tuple(sorted({f"*.{self.apps_domain}", self.apps_domain, *hosts}))
        if names == self._certified and self.layout.key.exists():
            return
        issued = certificates.issue_server(self.ca, f"*.{self.apps_domain}", dns_names=names)
        for path, text in ((self.layout.certificate, issued.chain_pem), (self.layout.key, issued.key_pem)):
            certificates.write_private(path, text)
            self.account.own(path, 0o600)
        self._certified = names

    def _write(self, table: RoutingTable, *, check: bool = True) -> None:
        """Write the configuration beside the live one, have nginx check it, then rename it in."""
        if self.layout.tls_port is not None:
            self._certify(table.hosts)
        candidate = self.layout.prefix / "nginx.conf.next"
        self._generation += 1
        candidate.write_text(render(table, self.layout, self._generation))
        self.account.own(candidate, 0o600)
        if not check:
            os.replace(candidate, self.layout.config_file)
            return
        checked = processes.run([nginx_binary(), "-t", "-q", "-p", str(self.layout.prefix), "-e",
                                 str(self.layout.error_log), "-c", str(candidate)],
                                self.account, cwd=self.layout.prefix, env=os.environ, timeout=30)
        if checked.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise RouterError(f"nginx refused the routing configuration: {checked.stderr.strip()}")
        os.replace(candidate, self.layout.config_file)

    # -- process -------------------------------------------------------------------------------

    def pid(self) -> int | None:
        try:
            pid = int(self.layout.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # nginx rewrites its title ("nginx: master process … -c <file>"): match inside it.
        return pid if processes.runs_with(pid, str(self.layout.config_file)) else None

    def running(self) -> bool:
        return self.pid() is not None

    def _kill_leftovers(self) -> None:
        """Workers of a master that was killed keep the ports: end them. Only processes in the
        old master's process group (spawn makes it a session) working in this prefix."""
        try:
            group = int(self.layout.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        for pid in _group_members(group, self.layout.prefix):
            log.warning("ending nginx process %d left behind by a router that died", pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not _group_members(group, self.layout.prefix), 5)

    def start(self, timeout: float = 15.0) -> None:
        self._prepare()
        self._kill_leftovers()
        self._write(self.table)
        argv = [nginx_binary(), "-p", str(self.layout.prefix), "-e", str(self.layout.error_log),
                "-c", str(self.layout.config_file)]
        self._process = processes.spawn(argv, self.account, cwd=self.layout.prefix, env=os.environ,
                                        stderr=subprocess.DEVNULL)
        up = wait_until(lambda: self.running() and listening(self.layout.listen_host, self.layout.port),
                        timeout)
        if not up:
            raise RouterError(f"nginx did not start listening on {self.layout.listen_host}:"
                              f"{self.layout.port} within {timeout:.0f}s; see {self.layout.error_log}")

    def ensure_running(self) -> bool:
        """Start nginx if it is not running; the supervisor calls this each round."""
        if self.running():
            return True
        log.warning("router (nginx) not running; starting it")
        self.start()
        return self.running()

    def apply(self, table: RoutingTable, timeout: float = 10.0, *, quick: bool = False) -> None:
        """Route by `table` from now on, returning once nginx's new workers serve it (needed before a
        dyno the table drops is signalled, or for a page switched on to show). A refused table
        leaves the running one in place.

        `quick`, for a table that only adds dynos to apps already routed (router/table.py
        only_adds_dynos; a scale-up): neither checked with `nginx -t` first (its hosts and pages are
        those of the table nginx accepted, its addresses validated) nor waited for, so that the
        caller routes the next dynos up without waiting for this reload."""
        self._write(table, check=not quick)
        self.table = table
        pid = self.pid()
        if pid is None:
            return  # ensure_running starts nginx with it
        os.kill(pid, signal.SIGHUP)
        if quick:
            return
        # Done when a new connection is served by the new configuration and no old worker still
        # accepts (an old worker renames itself "… is shutting down" once it stops accepting).
        if not wait_until(lambda: self.serving_generation() == self._generation
                          and _accepting_workers(pid) <= self.layout.workers, timeout, interval=0.01):
            raise RouterError(f"nginx did not load the new routing configuration within {timeout:.0f}s; "
                              f"see {self.layout.error_log}")

    def drain(self, timeout: float) -> bool:
        """Wait until the workers of earlier configurations have finished their requests and exited
        (a client's kept-alive connection may still bring a request to an old worker, which routes by
        the old table); False when some still run after `timeout`."""
        pid = self.pid()
        if pid is None:
            return True
        return wait_until(lambda: _workers(pid, b"nginx: worker process is shutting down") == 0, timeout,
                          interval=0.02)

    def reopen_logs(self) -> None:
        """Have nginx reopen its log files (after the access log was renamed aside)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGUSR1)

    def serving_generation(self) -> int | None:
        """The configuration generation a new connection to nginx is served by."""
        connection = http.client.HTTPConnection(self.layout.listen_host, self.layout.port, timeout=2)
        try:
            connection.request("GET", GENERATION_PATH, headers={"Host": "berth-router.invalid"})
            response = connection.getresponse()
            return int(response.read()) if response.status == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is not None:
            processes.stop(pid, lambda: processes.alive(pid), timeout)
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            self._process = None


def _accepting_workers(master: int) -> int:
    """How many of nginx `master`'s workers still accept connections."""
    return _workers(master, b"nginx: worker process")


def _workers(master: int, title: bytes) -> int:
    """How many of nginx `master`'s workers have this process title."""
    count = 0
    for pid in _children(master):
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            entry_title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].strip()
        except (OSError, ValueError, IndexError):
            continue
        if parent == master and entry_title == title:
            count += 1
    return count


def _children(parent: int) -> list[int]:
    """`parent`'s children: from /proc/<pid>/task/<pid>/children when the kernel has it (polled every
    10 ms while a reload settles, a scan of every process on a busy machine costs real CPU), else
    every process (the caller checks the parent)."""
    try:
        return [int(pid) for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    except FileNotFoundError:
        return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except (OSError, ValueError):
        return []


def _group_members(group: int, cwd: Path) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pgrp = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
            if pgrp == group and os.readlink(entry / "cwd") == str(cwd):
                members.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return members
