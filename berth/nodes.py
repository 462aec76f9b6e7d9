"""What a node of several needs before it starts: the secrets every node must share.

A node is one of several when BERTH_NODE_NAME is set. Nodes share one PostgreSQL control-plane
database, the encryption keys (BERTH_SECRET_KEYS: a key file made in one node's data dir would be
that node's alone), the installation CA (BERTH_CA_CERT and BERTH_CA_KEY, so every node serves
certificates clients trust alike) and, with the first-party add-ons on, their backend servers (an
embedded one is its machine's alone). Signing keys derive from BERTH_SECRET_KEYS, and the other
installation secrets are the database's (berth.installation_secrets), so nothing else is per node.

The configured CA is written into the data dir's `ca/` (where every server and the CA endpoint
read it), replacing a CA made there before.
"""
from __future__ import annotations

import socket
from pathlib import Path

from berth import certificates
from berth.config import Settings


class NodeConfigError(RuntimeError):
    """This node must not start: the message says what to set."""


def node_name(settings: Settings) -> str:
    """This node's name in the control plane (runner leases, one-off dynos' hosts): BERTH_NODE_NAME,
    else the machine's host name."""
    return settings.node_name or socket.gethostname()


def missing_shared_secrets(settings: Settings) -> list[str]:
    if not settings.node_name:
        return []
    missing = []
    if settings.database_url.startswith("sqlite"):
        missing.append("BERTH_DATABASE_URL (a PostgreSQL database every node uses; SQLite is one machine's)")
    if not settings.secret_keys:
        missing.append("BERTH_SECRET_KEYS (the same Fernet keys on every node)")
    if not (settings.ca_cert and settings.ca_key):
        missing.append("BERTH_CA_CERT and BERTH_CA_KEY (the installation CA every node serves)")
    if settings.builtin_addons:  # embedded backends are one machine's: an add-on made on one node
        external = {"BERTH_POSTGRES_SERVERS": bool(settings.postgres_servers),  # would be unreachable from,
                    "BERTH_REDIS_SERVERS": bool(settings.redis_servers),        # and unknown to, the others
                    "BERTH_KAFKA_BOOTSTRAP": bool(settings.kafka_bootstrap),
                    "BERTH_KAFKA_CA_DIR": bool(settings.kafka_ca_dir)}
        unset = [name for name, given in external.items() if not given]
        if unset:
            missing.append(f"{', '.join(unset)} (servers every node shares for the first-party add-ons; "
                           "or BERTH_BUILTIN_ADDONS=0)")
    return missing


def prepare_node(settings: Settings) -> None:
    """Refuse a node of several that lacks a shared secret; install a configured CA."""
    missing = missing_shared_secrets(settings)
    if missing:
        raise NodeConfigError(f"BERTH_NODE_NAME={settings.node_name} makes this node one of several, which "
                              f"must share their secrets; set {'; '.join(missing)}.")
    if bool(settings.ca_cert) != bool(settings.ca_key):
        raise NodeConfigError("BERTH_CA_CERT and BERTH_CA_KEY go together: set both (PEM text or a file's path), "
                              "or neither to let Berth make its own CA.")
    if settings.ca_cert:
        try:
            certificates.install(certificates.ca_directory(settings.data_dir), _pem(settings.ca_cert, "BERTH_CA_CERT"),
                                 _pem(settings.ca_key, "BERTH_CA_KEY"))
        except certificates.CAError as error:
            raise NodeConfigError(f"the configured installation CA cannot be used: {error}") from None


def _pem(value: str, name: str) -> str:
    """PEM text as given, or the text of the file the value names."""
    if value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise NodeConfigError(f"{name} is neither PEM text nor a readable file ({type(error).__name__}: "
                              f"{getattr(error, 'strerror', None) or error})") from None
