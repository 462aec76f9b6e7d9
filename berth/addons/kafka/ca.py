"""The Kafka add-on's certificate authority (`specs/backends.md` §8.2): it signs the embedded
broker's certificate and every tenant's client certificate, and its certificate is what apps get
as `KAFKA_TRUSTED_CERT` and what the broker's mTLS listener trusts.

The CA lives in `BERTH_KAFKA_CA_DIR` (ca.pem + ca.key, made by the operator for an external
cluster) or, by default, in `data_dir/backends/kafka/ca`, generated once (key file mode 0600).
Keys are ECDSA P-256 and written as unencrypted PKCS#8 (`-----BEGIN PRIVATE KEY-----`), the one
PEM key form Kafka's PEM key store reads. A tenant's principal is its certificate's CN: the
broker maps `CN=<name>` to `User:<name>` (`ssl.principal.mapping.rules`).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from berth.addons import local
from berth.config import Settings

CA_DAYS = 20 * 365
BROKER_DAYS = 5 * 365
CLIENT_DAYS = 5 * 365
# What a CN (and so a principal) may contain: nothing a DN or an ACL would need to escape.
COMMON_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class CAError(RuntimeError):
    """The CA files are missing, unreadable or do not belong together."""


@dataclass(frozen=True)
class CertificateAuthority:
    cert_pem: str
    key: ec.EllipticCurvePrivateKey | object  # whatever key type an operator's ca.key holds

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())


@dataclass(frozen=True)
class Issued:
    cert_pem: str      # the leaf certificate
    key_pem: str       # its private key, PKCS#8 PEM, unencrypted
    chain_pem: str     # leaf + CA, as a TLS server presents it


def ca_dir(settings: Settings) -> Path:
    return Path(settings.kafka_ca_dir) if settings.kafka_ca_dir else settings.data_dir / "backends" / "kafka" / "ca"


def load_or_create(directory: Path, name: str = "Berth Kafka CA") -> CertificateAuthority:
    """The CA in `directory`, generated there first (named `name`) if neither file exists (under
    a file lock, so concurrent processes make one CA)."""
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if not (cert_path.exists() and key_path.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        with local.file_lock(directory / ".ca.lock"):
            if not cert_path.exists() and not key_path.exists():
                _generate(cert_path, key_path, name)
    return load(directory)


def load(directory: Path) -> CertificateAuthority:
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    try:
        cert_pem = cert_path.read_text()
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    except (OSError, ValueError, TypeError) as error:
        raise CAError(f"cannot read the Kafka CA in {directory}: {type(error).__name__}") from None
    if certificate.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        raise CAError(f"{cert_path} and {key_path} do not belong together")
    return CertificateAuthority(cert_pem=cert_pem, key=key)


def for_settings(settings: Settings) -> CertificateAuthority:
    """The configured CA (`BERTH_KAFKA_CA_DIR`, which must hold both files) or the generated one."""
    if settings.kafka_ca_dir:
        return load(Path(settings.kafka_ca_dir))
    return load_or_create(ca_dir(settings))


def issue_client(ca: CertificateAuthority, common_name: str, days: int = CLIENT_DAYS) -> Issued:
    """A client certificate whose subject is only `CN=<common_name>`: the tenant's principal."""
    if not COMMON_NAME.match(common_name):
        raise ValueError(f"not a valid principal name: {common_name!r}")
    return _issue(ca, common_name, days, [ExtendedKeyUsageOID.CLIENT_AUTH], sans=[])


def issue_server(ca: CertificateAuthority, hosts: list[str], days: int = BROKER_DAYS) -> Issued:
    """A broker certificate valid for `hosts` (IP addresses and DNS names, as SANs)."""
    return _issue(ca, "berth-kafka-broker", days, [ExtendedKeyUsageOID.SERVER_AUTH], sans=_sans(hosts))


def issue_peer(ca: CertificateAuthority, common_name: str, hosts: list[str], days: int = BROKER_DAYS) -> Issued:
    """A certificate that serves as a TLS server for `hosts` and authenticates as a client as
    `CN=<common_name>`: the broker's identity on listeners where it also calls itself."""
    if not COMMON_NAME.match(common_name):
        raise ValueError(f"not a valid principal name: {common_name!r}")
    return _issue(ca, common_name, days, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                  sans=_sans(hosts))


def _sans(hosts: list[str]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return sans


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def common_name(certificate_pem: str) -> str:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(temporary, path)


# -- internals ---------------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _generate(cert_path: Path, key_path: Path, common_name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Berth"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, key_pem(key))  # the key first: a cert without its key is useless
    cert_path.write_text(cert_pem(certificate))


def _issue(ca: CertificateAuthority, cn: str, days: int, usages: list[x509.ObjectIdentifier],
           sans: list[x509.GeneralName]) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = ca.certificate
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
                       critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    certificate = builder.sign(ca.key, hashes.SHA256())  # type: ignore[arg-type]
    leaf = cert_pem(certificate)
    return Issued(cert_pem=leaf, key_pem=key_pem(key), chain_pem=leaf + ca.cert_pem)


__all__ = ["CAError", "CertificateAuthority", "Issued", "ca_dir", "cert_pem", "common_name", "for_settings",
           "issue_client", "issue_peer", "issue_server", "key_pem", "load", "load_or_create", "write_private"]
