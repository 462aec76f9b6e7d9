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
from pathlib import Path
from typing import Any

from berth import certificates
from berth.addons.redis import files
from berth.config import Settings
from berth.supervise.accounts import ServiceAccount

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.pem"
CONFIG_VAR = "REDIS_TLS_URL"


class CertificateError(RuntimeError):
    """The instance's certificate could not be issued (the message names no secret)."""


def enabled(details: dict[str, Any]) -> bool:
    return bool(details.get("tls_port"))


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
    if files.read_regular(directory / CA_FILE) == ca.cert_pem and files.read_regular(directory / CERT_FILE):
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


__all__ = ["CONFIG_VAR", "CertificateError", "config_lines", "enabled", "ensure_certificate"]
