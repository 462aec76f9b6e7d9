"""The add-on catalogue, and manifest pull/push for partners."""
from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy.orm import selectinload

from berth.broker import catalogue
from berth.broker.api import blueprint
from berth.broker.models import AddonService, Plan
from berth.broker.partner_api.manifest import HEROKU_REGIONS
from berth.broker.schemas import AddonServiceSchema, ManifestPushSchema, ManifestSchema, PlanSchema
from berth.errors import InvalidParams, NotFound
from berth.httpapi.body import load
from berth.httpapi.context import current_account, current_account_id, db_session
from berth.httpapi.openapi import describe
from berth.httpapi.pagination import paginate
from berth.outbound import TargetPolicy

Reply = Any


def _known_regions() -> frozenset[str]:
    return HEROKU_REGIONS | {current_app.config["BERTH_SETTINGS"].region}


@blueprint.get("/addon-services")
@describe(summary="The add-on catalogue", response=AddonServiceSchema, many=True)
def list_services() -> Reply:
    # default_plan reads each service's plans: load them all in one more query, not one each;
    # a plan's own service (joined by default) is its parent here, found in the identity map.
    plans = selectinload(AddonService.plans).lazyload(Plan.service)
    page = paginate(db_session(), catalogue.services_query().options(plans),
                    {"id": AddonService.id, "name": AddonService.name,
                     "created_at": AddonService.created_at, "updated_at": AddonService.updated_at},
                    request.headers.get("Range"), default="name", tie_breaker=AddonService.id)
    return page.respond(AddonServiceSchema(many=True).dump(page.rows))


@blueprint.get("/addon-services/<service_ref>")
@describe(summary="One add-on service by id or name", response=AddonServiceSchema)
def show_service(service_ref: str) -> Reply:
    return AddonServiceSchema().dump(catalogue.get_service(db_session(), service_ref))


@blueprint.get("/addon-services/<service_ref>/plans")
@describe(summary="A service's plans, cheapest first", response=PlanSchema, many=True)
def list_plans(service_ref: str) -> Reply:
    service = catalogue.get_service(db_session(), service_ref)
    return PlanSchema(many=True).dump(service.plans)


@blueprint.get("/addon-services/<service_ref>/plans/<plan_ref>")
@describe(summary="One plan of a service, by id, slug or service:slug", response=PlanSchema)
def show_service_plan(service_ref: str, plan_ref: str) -> Reply:
    session = db_session()
    service = catalogue.get_service(session, service_ref)
    return PlanSchema().dump(catalogue.get_plan(session, plan_ref, service=service))


@blueprint.get("/plans/<plan_ref>")
@describe(summary="One plan by id or service:slug", response=PlanSchema)
def show_plan(plan_ref: str) -> Reply:
    return PlanSchema().dump(catalogue.get_plan(db_session(), plan_ref))


def _owned_service(slug: str) -> AddonService:
    """A service the caller owns; anyone else's looks like a missing one."""
    service = catalogue.find_service(db_session(), slug)
    if service is None or service.owner_id != current_account_id():
        raise NotFound(catalogue.SERVICE_NOT_FOUND, resource="addon_service")
    return service


@blueprint.get("/api/v3/addons/<slug>/current_manifest")
@describe(summary="Pull your service's manifest (secrets included)", response=ManifestSchema)
def pull_manifest(slug: str) -> Reply:
    return ManifestSchema().dump({"contents": catalogue.manifest_of(_owned_service(slug))})


@blueprint.post("/api/v3/addons/<slug>/manifests")
@describe(summary="Push a manifest: register a new service or update yours",
          request=ManifestPushSchema, response=AddonServiceSchema, status=201)
def push_manifest(slug: str) -> Reply:
    contents = load(ManifestPushSchema())["contents"]
    if contents.get("id") != slug:
        raise InvalidParams(f"The manifest id must be {slug!r}, as in the URL.")
    service = catalogue.register_manifest(db_session(), contents, owner=current_account(),
                                          known_regions=_known_regions(),
                                          targets=TargetPolicy.from_settings(current_app.config["BERTH_SETTINGS"]))
    return AddonServiceSchema().dump(service), 201

