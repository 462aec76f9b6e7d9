"""`GET /ca.pem`: the installation CA's certificate, public, so tenants can verify the servers
Berth runs for them (`rediss://` add-ons and any other TLS endpoint it signs)."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app

from berth import certificates
from berth.errors import InternalError
from berth.httpapi.context import public

log = logging.getLogger(__name__)

blueprint = Blueprint("ca_certificate", __name__)


@blueprint.get("/ca.pem")
@public
def ca_pem() -> Response:
    data_dir = current_app.config["BERTH_SETTINGS"].data_dir
    try:
        ca = certificates.installation_ca(data_dir)
    except certificates.CAError as exc:
        log.error("GET /ca.pem: %s", exc)
        raise InternalError("The installation's certificate authority cannot be read; an operator must "
                            "repair or remove BERTH_DATA_DIR/ca (the server's log says why).") from exc
    return Response(ca.cert_pem, mimetype="text/plain")


__all__ = ["blueprint"]
