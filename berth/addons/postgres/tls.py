"""TLS for the PostgreSQL clusters Berth runs: a server certificate from the installation's CA, so
`sslmode=require` works for every tenant and `verify-full` with `$BERTH_DATA_DIR/ca/ca.pem`."""
from __future__ import annotations

import logging

from berth import certificates
from berth.addons.postgres.cluster import LocalPostgres
from berth.config import Settings
from berth.supervise.ports import LOOPBACK

log = logging.getLogger(__name__)


def ensure_tls(cluster: LocalPostgres, settings: Settings, name: str) -> None:
    """Turn TLS on in a running cluster that has no certificate yet (a new one, or one made before
    Berth served TLS); a no-op once it has one."""
    if cluster.has_certificate:
        return
    ca = certificates.installation_ca(settings.data_dir)
    issued = certificates.issue_server(ca, name, dns_names=["localhost"], ip_addresses=[LOOPBACK, "::1"])
    cluster.use_tls(issued.chain_pem, issued.key_pem)
    log.info("PostgreSQL cluster %s serves TLS with a certificate from %s", cluster.data_dir, ca.cert_path)
