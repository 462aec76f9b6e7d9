"""Certificate authorities and the certificates they issue: the one implementation Berth has.

The installation CA, made on first use under `$BERTH_DATA_DIR/ca/`, or given by BERTH_CA_CERT and
BERTH_CA_KEY and written there (`install`, by berth.nodes), so that several nodes serve one CA: `ca.pem` (world-readable:
tenants get it at `GET /ca.pem` to verify Berth's servers) and `ca.key` (0600). Backends that
listen beyond loopback (Redis's TLS port, and whatever else wants TLS) get a leaf certificate from
it for the DNS names and IP addresses clients dial.

Other CAs kept apart from it (Kafka's tenant CA and its admin CA) use the same files in a
directory of their own (`load_or_create(directory, name)`), and issue client certificates whose
subject is only `CN=<name>` (`issue_client`) and certificates that are both (`issue_peer`).

Keys are ECDSA P-256, written as unencrypted PKCS#8 PEM: the form OpenSSL-based servers (Redis,
PostgreSQL) and Java's PEM key store (Kafka) all read.
"""
from __future__ import annotations

import datetime as dt
import fcntl
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

__all__ = ["CAError", "CertificateAuthority", "Issued", "ca_directory", "cert_pem", "common_name",
           "install", "installation_ca", "issue_client", "issue_peer", "issue_server", "key_pem", "load", "load_or_create",
           "split_hosts", "write_private"]

CA_DIR_NAME = "ca"
CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca.key"
CA_LOCK_NAME = ".ca.lock"
INSTALLATION_CA_NAME = "Berth installation CA"
CA_DAYS = 20 * 365
SERVER_DAYS = 5 * 365
CLIENT_DAYS = 5 * 365


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


def load_or_create(directory: Path, name: str = INSTALLATION_CA_NAME) -> CertificateAuthority:
    """The CA in `directory`, generated first (its certificate named `name`) if it has none.

    A directory that does not exist yet is made whole in a private directory beside it, which is
    then renamed into place: a rename onto a directory that already holds files fails, so when
    several processes start at once exactly one CA wins, and nobody ever reads a half-written or
    mismatched pair. A directory that exists (it holds other files too, as Kafka's admin
    directory does) gets the pair under a file lock in it, the key first; a key without its
    certificate is never completed (`load` says so) rather than replaced."""
    if not (directory / CA_CERT_NAME).exists():
        if directory.is_dir():
            _create_inside(directory, name)
        else:
            _create_as_directory(directory, name)
    return load(directory)


def install(directory: Path, cert_text: str, key_text: str) -> CertificateAuthority:
    """A CA given by configuration, written into `directory` (the key first, each replaced
    atomically) unless it already holds exactly that pair. Refused unless the certificate is a CA's
    and the key is its own."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_text.encode())
        key = serialization.load_pem_private_key(key_text.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise CAError(f"the CA certificate or key is not unencrypted PEM ({type(error).__name__})") from None
    if _public_der(certificate.public_key()) != _public_der(key.public_key()):
        raise CAError("the CA key does not belong to the CA certificate")
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CAError("the certificate is not a CA's (it lacks basicConstraints CA:TRUE)")
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    current = cert_path.read_text() if cert_path.is_file() else None
    if current != cert_text or not key_path.is_file() or key_path.read_text() != key_text:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        write_private(key_path, key_text)
        write_private(cert_path, cert_text)
        cert_path.chmod(0o644)  # the CA certificate is public
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
    sans = _sans(dns_names, ip_addresses)
    if not sans:
        raise ValueError("a server certificate needs at least one DNS name or IP address")
    return _issue(ca, common_name, days, [ExtendedKeyUsageOID.SERVER_AUTH], sans)


def issue_client(ca: CertificateAuthority, common_name: str, days: int = CLIENT_DAYS) -> Issued:
    """A TLS client certificate whose subject is only `CN=<common_name>` (a server that maps
    certificates to users sees exactly that name). The caller vets the name."""
    return _issue(ca, common_name, days, [ExtendedKeyUsageOID.CLIENT_AUTH], [])


def issue_peer(ca: CertificateAuthority, common_name: str, dns_names: Iterable[str] = (),
               ip_addresses: Iterable[str] = (), days: int = SERVER_DAYS) -> Issued:
    """A certificate that serves TLS for `dns_names` and `ip_addresses` and authenticates as the
    client `CN=<common_name>`: a server that also connects to itself (a Kafka broker)."""
    sans = _sans(dns_names, ip_addresses)
    if not sans:
        raise ValueError("a peer certificate needs at least one DNS name or IP address")
    return _issue(ca, common_name, days, [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], sans)


def split_hosts(hosts: Iterable[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) among `hosts`, for `issue_server` and `issue_peer`."""
    names: list[str] = []
    addresses: list[str] = []
    for host in hosts:
        try:
            addresses.append(str(ipaddress.ip_address(host)))
        except ValueError:
            names.append(host)
    return names, addresses


def common_name(certificate_pem: str) -> str:
    """The CN of a PEM certificate's subject (the first certificate, for a chain)."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """`key` as unencrypted PKCS#8 PEM: the one private-key form every server here reads."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


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


def _create_as_directory(directory: Path, name: str) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))  # mode 0700
    try:
        _generate(aside, name)
        aside.chmod(0o755)  # ca.pem is public; ca.key keeps its own 0600
        os.rename(aside, directory)
    except OSError as error:
        if not (directory / CA_CERT_NAME).exists():  # not a lost race: a real failure
            raise CAError(f"cannot make the CA in {directory} ({error.strerror}); make its parent "
                          f"writable, or remove a {directory} that lacks {CA_CERT_NAME}") from None
    finally:
        shutil.rmtree(aside, ignore_errors=True)  # left only if another process won


def _create_inside(directory: Path, name: str) -> None:
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    try:
        with open(directory / CA_LOCK_NAME, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if cert_path.exists() or key_path.exists():
                return  # made meanwhile (or half there: load says which file is wrong)
            aside = Path(tempfile.mkdtemp(dir=directory, prefix=".ca-"))
            try:
                _generate(aside, name)
                os.rename(aside / CA_KEY_NAME, key_path)  # the key first: a cert without it is useless
                os.rename(aside / CA_CERT_NAME, cert_path)
            finally:
                shutil.rmtree(aside, ignore_errors=True)
    except OSError as error:
        raise CAError(f"cannot make the CA in {directory} ({error.strerror}); make it writable") from None


def _generate(directory: Path, common_name: str = INSTALLATION_CA_NAME) -> None:
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
    write_private(directory / CA_KEY_NAME, key_pem(key))
    cert_path = directory / CA_CERT_NAME
    cert_path.write_text(cert_pem(certificate))
    cert_path.chmod(0o644)  # whatever the umask: the CA certificate is public


def _sans(dns_names: Iterable[str], ip_addresses: Iterable[str]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    return sans + [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]


def _issue(ca: CertificateAuthority, common_name: str, days: int, usages: list[x509.ObjectIdentifier],
           sans: list[x509.GeneralName]) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = ca.certificate
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()), critical=False)  # type: ignore[arg-type]
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    leaf = cert_pem(builder.sign(ca.key, hashes.SHA256()))
    return Issued(cert_pem=leaf, key_pem=key_pem(key), chain_pem=leaf + ca.cert_pem)


def _public_der(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
