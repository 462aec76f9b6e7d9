"""How Berth authenticates to an operator's Kafka cluster (`BERTH_KAFKA_BOOTSTRAP` set): mutual
TLS with a client certificate the operator issued to Berth.

mTLS rather than SASL: the same identity model as the embedded broker (a certificate's CN is the
principal the operator makes a super user), no password in Berth's environment, and one
`ssl.SSLContext` serves both confluent-kafka and the raw AlterClientQuotas requests (SASL would
need a hand-written SCRAM exchange on those).

Settings (PEM file paths): `BERTH_KAFKA_ADMIN_CERT` + `BERTH_KAFKA_ADMIN_KEY` (Berth's client
certificate, or a chain, and its unencrypted key), `BERTH_KAFKA_ADMIN_CA` (what signs the
brokers' certificates; the system's CAs when unset). They are checked when the provider is
built (at Berth's start): no `BERTH_KAFKA_ADMIN_BOOTSTRAP`, a file that is missing, unreadable
or not PEM of the right kind, a half pair or a key that is not the certificate's is a
`ConfigError` naming the variable. No credentials at all is refused too, unless
`BERTH_KAFKA_ADMIN_INSECURE=1` says the admin listener is meant to take anonymous clients (then
a warning is logged at every start).
"""
from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from berth.config import Settings

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The external cluster's admin settings are incomplete or name files Berth cannot use."""


@dataclass(frozen=True)
class AdminAccess:
    """What Berth's admin clients present to an external cluster's admin listener."""
    cert: Path | None = None   # client certificate (chain) PEM
    key: Path | None = None    # its private key PEM
    ca: Path | None = None     # trust anchor for the brokers' certificates; None: the system's

    @property
    def authenticated(self) -> bool:
        return self.cert is not None

    @property
    def tls(self) -> bool:
        return self.cert is not None or self.ca is not None

    def client_config(self, address: str) -> dict[str, Any]:
        """confluent-kafka settings for an admin client of `address`."""
        config: dict[str, Any] = {"bootstrap.servers": address}
        if not self.tls:
            return config  # plaintext, allowed by BERTH_KAFKA_ADMIN_INSECURE=1
        config.update({"security.protocol": "ssl", "ssl.endpoint.identification.algorithm": "https"})
        if self.ca is not None:
            config["ssl.ca.location"] = str(self.ca)
        if self.cert is not None and self.key is not None:
            config.update({"ssl.certificate.location": str(self.cert), "ssl.key.location": str(self.key)})
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS client context for raw admin requests (client quotas); None for plaintext."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if self.cert is not None and self.key is not None:
            context.load_cert_chain(str(self.cert), str(self.key))
        return context


def admin_access(settings: Settings) -> AdminAccess | None:
    """The checked admin credentials for the external cluster; None when Berth runs its own broker.
    Raises ConfigError (naming the variable and what to do) when they cannot be used."""
    if not settings.kafka_bootstrap:
        return None
    if not settings.kafka_admin_bootstrap:
        raise ConfigError("BERTH_KAFKA_BOOTSTRAP is set but BERTH_KAFKA_ADMIN_BOOTSTRAP is not: name the listener "
                          "(host:port) where Berth's admin certificate is a super user")
    cert, key, ca = (Path(value) if value else None for value in (
        settings.kafka_admin_cert, settings.kafka_admin_key, settings.kafka_admin_ca))
    if (cert is None) != (key is None):
        given, missing = ("BERTH_KAFKA_ADMIN_CERT", "BERTH_KAFKA_ADMIN_KEY") if key is None else \
            ("BERTH_KAFKA_ADMIN_KEY", "BERTH_KAFKA_ADMIN_CERT")
        raise ConfigError(f"{given} is set but {missing} is not: Berth's admin client needs both the "
                          "certificate and its key (PEM files)")
    if ca is not None:
        _certificates(ca, "BERTH_KAFKA_ADMIN_CA")
    if cert is not None and key is not None:
        leaf = _certificates(cert, "BERTH_KAFKA_ADMIN_CERT")[0]
        private = _private_key(key, "BERTH_KAFKA_ADMIN_KEY")
        if _public_der(leaf.public_key()) != _public_der(private.public_key()):
            raise ConfigError(f"BERTH_KAFKA_ADMIN_KEY ({key}) is not the key of the certificate in "
                              f"BERTH_KAFKA_ADMIN_CERT ({cert})")
        return AdminAccess(cert=cert, key=key, ca=ca)
    if not settings.kafka_admin_insecure:
        raise ConfigError(
            f"BERTH_KAFKA_ADMIN_BOOTSTRAP ({settings.kafka_admin_bootstrap}) has no credentials: set "
            "BERTH_KAFKA_ADMIN_CERT and BERTH_KAFKA_ADMIN_KEY to a client certificate the cluster makes a super "
            "user (and BERTH_KAFKA_ADMIN_CA to the CA of its brokers), or BERTH_KAFKA_ADMIN_INSECURE=1 if its "
            "admin listener is meant to take anonymous clients")
    log.warning("BERTH_KAFKA_ADMIN_INSECURE=1: Berth administers the Kafka cluster at %s without credentials%s; "
                "anyone who reaches that listener can do what Berth does", settings.kafka_admin_bootstrap,
                " (TLS, no client certificate)" if ca is not None else " and in plaintext")
    return AdminAccess(ca=ca)


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{variable}: cannot read {path} ({error.strerror}); give the path of a PEM file "
                          "Berth's account can read") from None


def _certificates(path: Path, variable: str) -> list[x509.Certificate]:
    text = _read(path, variable)
    try:
        found = x509.load_pem_x509_certificates(text)
    except ValueError:
        found = []
    if not found:
        raise ConfigError(f"{variable}: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return found


def _private_key(path: Path, variable: str) -> Any:
    text = _read(path, variable)
    try:
        return serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{variable}: {path} holds no unencrypted PEM private key") from None


def _public_der(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


__all__ = ["AdminAccess", "ConfigError", "admin_access"]
