"""/apps/{app}/domains: the host names the router serves an app under."""
from __future__ import annotations

from typing import Any

from berth.httpapi.body import load
from berth.httpapi.context import current_account_id, db_session
from berth.httpapi.openapi import describe
from berth.platform import apps, domains
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.schemas import DomainCreateSchema, DomainSchema, SniEndpointSchema

Reply = Any


@blueprint.get("/apps/<app_ref>/domains")
@describe(summary="An app's domains: its default one and custom ones", response=DomainSchema, many=True)
def list_domains(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DomainSchema(many=True).dump(domains.list_domains(session, app, settings().apps_domain))


@blueprint.post("/apps/<app_ref>/domains")
@describe(summary="Add a custom domain (422 if another app has it)", request=DomainCreateSchema,
          response=DomainSchema, status=201)
def add_domain(app_ref: str) -> Reply:
    params = load(DomainCreateSchema())
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DomainSchema().dump(domains.add_domain(session, app, params["hostname"], settings().apps_domain)), 201


@blueprint.get("/apps/<app_ref>/domains/<ref>")
@describe(summary="One domain by id or host name", response=DomainSchema)
def show_domain(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DomainSchema().dump(domains.get_domain(session, app, ref, settings().apps_domain))


@blueprint.delete("/apps/<app_ref>/domains/<ref>")
@describe(summary="Remove a custom domain", response=DomainSchema)
def remove_domain(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DomainSchema().dump(domains.remove_domain(session, app, ref, settings().apps_domain))


@blueprint.get("/apps/<app_ref>/sni-endpoints")
@describe(summary="Uploaded certificates: none (the router's come from Berth's CA)", response=SniEndpointSchema,
          many=True)
def list_sni_endpoints(app_ref: str) -> Reply:
    # `heroku domains:add` asks first, to offer a certificate to attach the domain to.
    apps.get_app(db_session(), current_account_id(), app_ref)
    return []
