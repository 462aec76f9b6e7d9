"""Aborting the router's connections to dynos on a machine that stopped answering.

A machine that hangs (or whose link is cut) leaves nginx waiting on the requests it sent there until
its 30 s timeout (H12), and its kept-alive connections would take the next ones there too. Once the
runner knows the machine is gone it routes away from its dynos and aborts every connection to them
(`ss -K`, root's, CAP_NET_ADMIN): nginx sees an error, not silence, and sends those requests on to
another dyno (`proxy_next_upstream error`), so they succeed late rather than fail.
"""
from __future__ import annotations

import ipaddress
import logging
import shutil
import subprocess
from typing import Iterable

__all__ = ["abort_connections"]

log = logging.getLogger(__name__)


def abort_connections(addresses: Iterable[str]) -> int:
    """Abort every TCP connection of this host to each `host:port`; how many addresses were done.
    An address that is not an IP and a port is skipped (they come from the swarm's records)."""
    ss = shutil.which("ss") or "/usr/bin/ss"
    done = 0
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            ip, number = ipaddress.ip_address(host.strip("[]")), int(port)
        except ValueError:
            log.warning("not aborting connections to %r: not an IP address and port", address)
            continue
        try:
            result = subprocess.run([ss, "-K", "-t", "dst", str(ip), "dport", "=", str(number)],
                                    capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("could not abort connections to %s: %s", address, exc)
            continue
        if result.returncode != 0:
            log.warning("could not abort connections to %s (root's CAP_NET_ADMIN is needed): %s", address,
                        result.stderr.strip())
            continue
        done += 1
    return done
