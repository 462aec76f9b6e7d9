"""The installation's certificate authority, and server certificates it issues.

One CA per installation, made on first use under `$BERTH_DATA_DIR/ca/`: `ca.pem` (world-readable:
tenants get it at `GET /ca.pem` to verify Berth's servers) and `ca.key` (0600). Backends that
listen beyond loopback (Redis's TLS port, and whatever else wants TLS) get a leaf certificate from
it for the DNS names and IP addresses clients dial.

Keys are ECDSA P-256, written as unencrypted PKCS#8 PEM: the form OpenSSL-based servers (Redis,
PostgreSQL) and Java's PEM key store (Kafka) all read.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CAError", "CertificateAuthority", "Issued", "ca_directory", "installation_ca", "issue_server",
           "load", "load_or_create", "write_private"]

CA_DIR_NAME = "ca"
CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca.key"
CA_DAYS = 20 * 365
SERVER_DAYS = 5 * 365


class CAError(RuntimeError):
    """The CA's files are missing, unreadable or do not belong together."""


@dataclass(frozen=True)
class CertificateAuthority:
    directory: Path
    cert_pem: str
    key: CertificateIssuerPrivateKeyTypes

    @property
    def cert_path(self) -> Path:
        """The CA certificate's file: what a client passes as its trust anchor (`ssl_ca_certs`)."""
        return self.directory / CA_CERT_NAME

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())


@dataclass(frozen=True)
class Issued:
    cert_pem: str   # the leaf certificate
    key_pem: str    # its private key, PKCS#8 PEM, unencrypted: write it with write_private
    chain_pem: str  # leaf + CA, as a TLS server presents it


def ca_directory(data_dir: Path) -> Path:
    return data_dir / CA_DIR_NAME


def installation_ca(data_dir: Path) -> CertificateAuthority:
    """The installation's CA, made under `data_dir/ca` by whichever process asks first."""
    return load_or_create(ca_directory(data_dir))


def load_or_create(directory: Path) -> CertificateAuthority:
    """The CA in `directory`, generated first if the directory does not exist.

    Both files are written into a private directory beside it, which is then renamed into place:
    a rename onto a directory that already holds files fails, so when several processes start at
    once exactly one CA wins, and nobody ever reads a half-written or mismatched pair."""
    if not (directory / CA_CERT_NAME).exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))  # mode 0700
        try:
            _generate(aside)
            aside.chmod(0o755)  # ca.pem is public; ca.key keeps its own 0600
            os.rename(aside, directory)
        except OSError as error:
            if not (directory / CA_CERT_NAME).exists():  # not a lost race: a real failure
                raise CAError(f"cannot make the CA in {directory} ({error.strerror}); make its parent "
                              f"writable, or remove a {directory} that lacks {CA_CERT_NAME}") from None
        finally:
            shutil.rmtree(aside, ignore_errors=True)  # left only if another process won
    return load(directory)


def load(directory: Path) -> CertificateAuthority:
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    try:
        cert_pem = cert_path.read_text()
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    except (OSError, ValueError, TypeError) as error:
        raise CAError(f"cannot read the CA in {directory} ({type(error).__name__}); it needs "
                      f"{CA_CERT_NAME} and {CA_KEY_NAME}, or remove the directory to make a new CA") from None
    if _public_der(certificate.public_key()) != _public_der(key.public_key()):
        raise CAError(f"{cert_path} and {key_path} do not belong together")
    return CertificateAuthority(directory=directory, cert_pem=cert_pem, key=key)  # type: ignore[arg-type]


def issue_server(ca: CertificateAuthority, common_name: str, dns_names: Iterable[str] = (),
                 ip_addresses: Iterable[str] = (), days: int = SERVER_DAYS) -> Issued:
    """A TLS server certificate valid for `dns_names` and `ip_addresses` (both as SANs: clients
    check SANs, never the CN)."""
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    if not sans:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = ca.certificate
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(ca.key, hashes.SHA256())
    )
    leaf = _cert_pem(certificate)
    return Issued(cert_pem=leaf, key_pem=_key_pem(key), chain_pem=leaf + ca.cert_pem)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the start (never readable by others, even
    briefly), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(aside, path)
    except BaseException:
        os.unlink(aside)
        raise


# -- internals ---------------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _generate(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Berth"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Berth installation CA")])
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
    write_private(directory / CA_KEY_NAME, _key_pem(key))
    cert_path = directory / CA_CERT_NAME
    cert_path.write_text(_cert_pem(certificate))
    cert_path.chmod(0o644)  # whatever the umask: the CA certificate is public


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
