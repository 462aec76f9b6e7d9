"""The TLS listener's certificate: issued by the installation CA for every name and address a
client may dial (DNS names and IP SANs both; git and Node check 127.0.0.1 as an IP SAN), kept in
`$BERTH_DATA_DIR/tls/` and issued again when the names change, the CA changes or it nears expiry."""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from berth import certificates
from berth.config import Settings

TLS_DIR_NAME = "tls"
CERT_NAME = "server.pem"
KEY_NAME = "server.key"
RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def server_names(settings: Settings) -> list[str]:
    """localhost and the loopback addresses always; the bound host, BERTH_PUBLIC_URL's host and
    BERTH_TLS_NAMES when given."""
    names = ["localhost", "127.0.0.1", "::1"]
    public_host = urlsplit(settings.public_url).hostname if settings.public_url else None
    for extra in (settings.host if settings.host not in _WILDCARD_HOSTS else None, public_host,
                  *settings.tls_names):
        if extra and extra not in names:
            names.append(extra)
    return names


def ensure_certificate(settings: Settings) -> tuple[Path, Path]:
    """(certificate chain, private key) paths for the TLS listener, issued if needed."""
    directory = settings.data_dir / TLS_DIR_NAME
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    ca = certificates.installation_ca(settings.data_dir)
    names = server_names(settings)
    if not (key_path.exists() and _still_good(cert_path, ca, names)):
        dns_names, addresses = certificates.split_hosts(names)
        issued = certificates.issue_server(ca, "Berth", dns_names, addresses)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        certificates.write_private(key_path, issued.key_pem)
        certificates.write_private(cert_path, issued.chain_pem)
    return cert_path, key_path


def _still_good(cert_path: Path, ca: certificates.CertificateAuthority, names: list[str]) -> bool:
    try:
        leaf = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    if leaf.issuer != ca.certificate.subject or not ca.cert_pem.strip() in cert_path.read_text():
        return False
    if leaf.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.timezone.utc):
        return False
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = set(sans.get_values_for_type(x509.DNSName)) | {
        str(a) for a in sans.get_values_for_type(x509.IPAddress)}
    want = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names}
    return want <= have


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
