"""The Kafka add-on's certificate authority (`specs/backends.md` §8.2): it signs the embedded
broker's certificate and every tenant's client certificate, and its certificate is what apps get
as `KAFKA_TRUSTED_CERT` and what the broker's mTLS listener trusts.

The CA lives in `BERTH_KAFKA_CA_DIR` (ca.pem + ca.key, made by the operator for an external
cluster) or, by default, in `data_dir/backends/kafka/ca`, generated once. It is a CA of its own,
apart from the installation CA and from the embedded broker's admin CA, but made and used with
`berth.certificates` (same files, same key form: ECDSA P-256, unencrypted PKCS#8, the one PEM
key form Kafka's PEM key store reads). What this module adds is Kafka's: where the CA lives, and
that a certificate's CN is a principal: the broker maps `CN=<name>` to `User:<name>`
(`ssl.principal.mapping.rules`), so a name must need no escaping in a DN or an ACL.
"""
from __future__ import annotations

import re
from pathlib import Path

from berth import certificates
from berth.certificates import CAError, CertificateAuthority, Issued, cert_pem, common_name, key_pem, load, write_private
from berth.config import Settings

CA_NAME = "Berth Kafka CA"
BROKER_NAME = "berth-kafka-broker"
# What a CN (and so a principal) may contain: nothing a DN or an ACL would need to escape.
COMMON_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def ca_dir(settings: Settings) -> Path:
    return Path(settings.kafka_ca_dir) if settings.kafka_ca_dir else settings.data_dir / "backends" / "kafka" / "ca"


def load_or_create(directory: Path, name: str = CA_NAME) -> CertificateAuthority:
    """The CA in `directory`, generated there first (named `name`) if it has none."""
    return certificates.load_or_create(directory, name)


def for_settings(settings: Settings) -> CertificateAuthority:
    """The configured CA (`BERTH_KAFKA_CA_DIR`, which must hold both files) or the generated one."""
    if settings.kafka_ca_dir:
        return load(Path(settings.kafka_ca_dir))
    return load_or_create(ca_dir(settings))


def issue_client(ca: CertificateAuthority, principal: str) -> Issued:
    """A client certificate whose subject is only `CN=<principal>`: a tenant's (or Berth's) identity."""
    return certificates.issue_client(ca, _checked(principal))


def issue_server(ca: CertificateAuthority, hosts: list[str]) -> Issued:
    """A broker certificate valid for `hosts` (IP addresses and DNS names, as SANs)."""
    return certificates.issue_server(ca, BROKER_NAME, *certificates.split_hosts(hosts))


def issue_peer(ca: CertificateAuthority, principal: str, hosts: list[str]) -> Issued:
    """A certificate that serves as a TLS server for `hosts` and authenticates as a client as
    `CN=<principal>`: the broker's identity on listeners where it also calls itself."""
    return certificates.issue_peer(ca, _checked(principal), *certificates.split_hosts(hosts))


def _checked(principal: str) -> str:
    if not COMMON_NAME.match(principal):
        raise ValueError(f"not a valid principal name: {principal!r}")
    return principal


__all__ = ["CAError", "CertificateAuthority", "Issued", "ca_dir", "cert_pem", "common_name", "for_settings",
           "issue_client", "issue_peer", "issue_server", "key_pem", "load", "load_or_create", "write_private"]
