"""/apps/{app}/buildpack-installations: the buildpacks an app's next build uses, in order."""
from __future__ import annotations

from typing import Any

from berth.httpapi.body import json_body, load
from berth.httpapi.context import current_account_id, db_session, public
from berth.httpapi.openapi import describe
from berth.outbound import TargetPolicy
from berth.platform import apps, buildpack_installations
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.schemas import BuildpackInstallationSchema, BuildpackInstallationsUpdateSchema

Reply = Any


@blueprint.get("/apps/<app_ref>/buildpack-installations")
@describe(summary="An app's buildpacks, in build order", response=BuildpackInstallationSchema, many=True)
def list_buildpack_installations(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return BuildpackInstallationSchema(many=True).dump(buildpack_installations.list_installations(session, app))


@blueprint.put("/apps/<app_ref>/buildpack-installations")
@describe(summary="Replace an app's buildpacks (an empty list: detect them at build time)",
          response=BuildpackInstallationSchema, many=True, request=BuildpackInstallationsUpdateSchema)
def update_buildpack_installations(app_ref: str) -> Reply:
    updates = load(BuildpackInstallationsUpdateSchema(), json_body())["updates"]
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    installed = buildpack_installations.replace_installations(
        session, app, [update["buildpack"] for update in updates], TargetPolicy.from_settings(settings()))
    return BuildpackInstallationSchema(many=True).dump(installed)


@blueprint.get("/buildpack-registry/buildpacks/<path:slug>")
@describe(summary="Heroku's buildpack registry, as far as the Heroku CLI asks it (HEROKU_BUILDPACK_REGISTRY_URL)")
@public
def registry_buildpack(slug: str) -> Reply:
    return {"name": slug, "blob_url": buildpack_installations.registry_blob_url(slug)}
