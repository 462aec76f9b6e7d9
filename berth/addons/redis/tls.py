"""TLS for local Redis instances: beside its plain port each instance listens on `tls_port` with
a certificate from the installation's CA (`berth.certificates`), and the add-on's config gets
`REDIS_TLS_URL` (`rediss://…`). Apps verify the server with the CA from `GET /ca.pem`.

The certificate names the record's host, 127.0.0.1 and localhost (IP addresses as IP SANs, so a
client that dials an address verifies it). It lives in the instance's directory (`tls.crt`, the
chain; `tls.key`, 0600; `ca.pem`, the CA that signed it) and is issued again when the
installation's CA is no longer the one that signed it. Tenants authenticate with the password,
as on the plain port: no client certificates (Heroku's `rediss://` works the same way).

Records made before TLS existed have no `tls_port`: they keep their plain URL only.
"""
from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path
from typing import Any

from berth import certificates
from berth.config import Settings
from berth.supervise import files
from berth.supervise.accounts import ServiceAccount

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.pem"
CONFIG_VAR = "REDIS_TLS_URL"


class CertificateError(RuntimeError):
    """The instance's certificate could not be issued (the message names no secret)."""


def enabled(details: dict[str, Any]) -> bool:
    return bool(details.get("tls_port"))


def plain_port_open(details: dict[str, Any]) -> bool:
    """Plain text only where it cannot leave the machine: on a loopback host, or for a record
    from before TLS (it has nothing else). Elsewhere the server has no plain port at all, and
    REDIS_URL is the `rediss://` one too (as Heroku's is)."""
    return not enabled(details) or is_loopback(str(details["host"]))


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to (and so every one the server binds) is loopback."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        return bool(found) and all(ipaddress.ip_address(entry[4][0]).is_loopback for entry in found)
    except (OSError, ValueError):  # unresolvable: assume the worst
        return False


def ca_file(settings: Settings) -> Path:
    """The installation CA's certificate: what Berth verifies its instances' TLS ports with."""
    try:
        return certificates.installation_ca(settings.data_dir).cert_path
    except certificates.CAError as exc:
        raise CertificateError(str(exc)) from exc


def client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def config_lines(details: dict[str, Any]) -> list[str]:
    """redis.conf lines for the TLS port (paths relative to the instance's directory)."""
    if not enabled(details):
        return []
    return [f"tls-port {int(details['tls_port'])}", f"tls-cert-file {CERT_FILE}", f"tls-key-file {KEY_FILE}",
            f"tls-ca-cert-file {CA_FILE}", "tls-auth-clients no", "tls-replication no"]


def ensure_certificate(settings: Settings, directory: Path, details: dict[str, Any],
                       account: ServiceAccount) -> None:
    """Give the instance a certificate from the installation's CA, unless it has one already."""
    if not enabled(details):
        return
    try:
        ca = certificates.installation_ca(settings.data_dir)
    except certificates.CAError as exc:
        raise CertificateError(str(exc)) from exc
    if files.read_regular(directory / CA_FILE) == ca.cert_pem and all(
            files.has_content(directory / name) for name in (CERT_FILE, KEY_FILE)):
        return
    names = dict.fromkeys([str(details["host"]), "127.0.0.1", "localhost"])
    addresses = [name for name in names if _is_address(name)]
    issued = certificates.issue_server(ca, "berth-redis", dns_names=[n for n in names if n not in addresses],
                                       ip_addresses=addresses)
    files.write_owned(directory / KEY_FILE, issued.key_pem, account)
    files.write_owned(directory / CERT_FILE, issued.chain_pem, account)
    files.write_owned(directory / CA_FILE, ca.cert_pem, account)  # last: the set is complete


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


__all__ = ["CONFIG_VAR", "CertificateError", "ca_file", "client_context", "config_lines", "enabled",
           "ensure_certificate", "is_loopback", "plain_port_open"]
