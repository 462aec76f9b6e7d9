"""The partner portal: publish an add-on service from its manifest and see who uses it.

Pages go through the same service functions as the partner API's manifest push
(`catalogue.register_manifest`), so a manifest is accepted or refused with the same messages.
Secrets (API password, SSO salt, OAuth client secret) are never written into a page, except a
freshly rotated one, once, on the answer to the rotation.
"""
from __future__ import annotations

import json
from typing import Any

from flask import redirect, request, url_for

from berth.broker import catalogue, partner_secrets
from berth.broker.models import AddonService
from berth.broker.partner_api.manifest import HEROKU_REGIONS
from berth.errors import BerthError, InvalidParams
from berth.httpapi.body import parse_json
from berth.httpapi.context import current_account, current_account_id, db_session
from berth.outbound import TargetPolicy
from berth.web.pages import blueprint, login_required, render, settings

Reply = Any
SECRET_KEYS = ("password", "sso_salt", "client_secret")
NEW_TEMPLATE = "web/partners/new.html"
SERVICE_TEMPLATE = "web/partners/service.html"
SECRET_TEMPLATE = "web/partners/secret.html"
# After a redirect (`?done=…`): what the page confirms.
NOTICES = {"published": "Your add-on service is published.", "updated": "The manifest is updated."}
EXAMPLE_MANIFEST = json.dumps({
    "id": "acme-cache", "name": "Acme Cache", "description": "A fast cache.",
    "api": {"version": "3", "config_vars": ["ACME_CACHE_URL"], "password": "a-long-random-password",
            "regions": ["*"], "production": {"base_url": "https://acme.example/heroku/resources"}},
    "plans": [{"name": "free", "price": {"cents": 0}, "default": True}],
}, indent=2)


def _known_regions() -> frozenset[str]:
    """As the API's push: Heroku's regions and this installation's own."""
    return HEROKU_REGIONS | {settings().region}


def _parse(text: str) -> Any:
    """The pasted manifest, or InvalidParams saying where the JSON breaks."""
    try:
        return parse_json(text, what="The manifest")
    except json.JSONDecodeError as error:
        raise InvalidParams(f"The manifest is not valid JSON: {error.msg} "
                            f"(line {error.lineno}, column {error.colno}).") from None


def _field_errors(error: BerthError) -> list[tuple[str, str]]:
    """(field path, message) pairs from the API's `errors`, one per field."""
    errors = error.extra.get("errors") or {}
    return [(path, " ".join(messages)) for path, messages in sorted(errors.items())]


def _refused(template: str, error: BerthError, **context: Any) -> Reply:
    """The form again with the API's message, the per-field errors and what was typed."""
    return render(template, error.status, error=error.message, field_errors=_field_errors(error),
                  manifest_text=request.form.get("manifest", ""), **context)


def _public_manifest(service: AddonService) -> str:
    """The current manifest without its secrets: safe to show, and to paste back unchanged."""
    document = catalogue.manifest_of(service)
    for key in SECRET_KEYS:
        document["api"].pop(key, None)
    return json.dumps(document, indent=2)


def _keep_secrets(document: Any, service: AddonService) -> Any:
    """Secrets left out of a pasted manifest stay as they are (partners need not paste them)."""
    if not isinstance(document, dict):
        return document
    document.setdefault("id", service.name)
    if document["id"] != service.name:
        raise InvalidParams(f"The manifest id must be {service.name!r}, as in the URL.")
    api = document.get("api")
    if isinstance(api, dict):
        api.setdefault("password", service.password)
        if service.sso_salt:
            api.setdefault("sso_salt", service.sso_salt)
    return document


def _service_context(service: AddonService) -> dict[str, Any]:
    per_plan = partner_secrets.live_installs_per_plan(db_session(), service.id)
    return {"service": service, "per_plan": per_plan, "total_installs": sum(per_plan.values())}


def _service_page(service: AddonService, status: int = 200, **context: Any) -> Reply:
    context.setdefault("manifest_text", _public_manifest(service))
    return render(SERVICE_TEMPLATE, status, **_service_context(service), **context)


def _mine(ref: str) -> AddonService:
    return partner_secrets.owned_service(db_session(), current_account_id(), ref)


@blueprint.get("/partners")
@login_required
def partner_services() -> Reply:
    services = partner_secrets.owned_services(db_session(), current_account_id())
    installs = partner_secrets.live_installs(db_session(), [service.id for service in services])
    return render("web/partners/services.html", services=services, installs=installs)


@blueprint.get("/partners/new")
@login_required
def new_partner_service() -> Reply:
    return render(NEW_TEMPLATE, manifest_text="", example=EXAMPLE_MANIFEST)


@blueprint.post("/partners/new")
@login_required
def create_partner_service() -> Reply:
    try:
        document = _parse(request.form.get("manifest", ""))
        service = catalogue.register_manifest(db_session(), document, owner=current_account(),
                                              known_regions=_known_regions(),
                                              targets=TargetPolicy.from_settings(settings()))
    except BerthError as error:
        return _refused(NEW_TEMPLATE, error, example=EXAMPLE_MANIFEST)
    return redirect(url_for("web.partner_service", service_ref=service.name, done="published"), 303)


@blueprint.get("/partners/<service_ref>")
@login_required
def partner_service(service_ref: str) -> Reply:
    return _service_page(_mine(service_ref), notice=NOTICES.get(request.args.get("done", "")))


@blueprint.post("/partners/<service_ref>/manifest")
@login_required
def update_partner_service(service_ref: str) -> Reply:
    service = _mine(service_ref)
    try:
        document = _keep_secrets(_parse(request.form.get("manifest", "")), service)
        catalogue.register_manifest(db_session(), document, owner=current_account(),
                                    known_regions=_known_regions(), targets=TargetPolicy.from_settings(settings()))
    except BerthError as error:
        db_session().rollback()  # the page below reads the service as it was
        service = _mine(service_ref)
        return _service_page(service, error.status, error=error.message,
                             field_errors=_field_errors(error),
                             manifest_text=request.form.get("manifest", ""))
    return redirect(url_for("web.partner_service", service_ref=service.name, done="updated"), 303)


def _secret_page(service: AddonService, what: str, secret: str) -> Reply:
    body, status = render(SECRET_TEMPLATE, service=service, what=what, secret=secret)
    return body, status, {"Cache-Control": "no-store"}


@blueprint.post("/partners/<service_ref>/rotate-password")
@login_required
def rotate_partner_password(service_ref: str) -> Reply:
    service = _mine(service_ref)
    return _secret_page(service, "API password", partner_secrets.rotate_password(db_session(), service))


@blueprint.post("/partners/<service_ref>/rotate-sso-salt")
@login_required
def rotate_partner_sso_salt(service_ref: str) -> Reply:
    service = _mine(service_ref)
    return _secret_page(service, "SSO salt", partner_secrets.rotate_sso_salt(db_session(), service))
