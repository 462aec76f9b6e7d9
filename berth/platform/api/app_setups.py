"""/app-setups: an app made from a source tarball and its app.json (Platform API app-setup)."""
from __future__ import annotations

from typing import Any

from berth.httpapi.body import load
from berth.httpapi.context import current_account, current_account_id, db_session
from berth.httpapi.openapi import describe
from berth.jobs.wakeup import nudge_workers
from berth.platform.api import blueprint
from berth.platform.api.builds import output_stream_url_of
from berth.platform.api.helpers import settings
from berth.platform.app_setups import records
from berth.platform.app_setups.schemas import AppSetupCreateSchema, AppSetupSchema

Reply = Any


def _schema() -> AppSetupSchema:
    configured = settings()
    return AppSetupSchema(output_stream_url=output_stream_url_of,
                          web_url=lambda name: f"http://{name}.{configured.apps_domain}:{configured.router_port}/")


@blueprint.post("/app-setups")
@describe(summary="Create an app from a source tarball and its app.json: add-ons, config, buildpacks, "
          "formation, a build and the postdeploy script", request=AppSetupCreateSchema, response=AppSetupSchema,
          status=202)
def create_app_setup() -> Reply:
    params = load(AppSetupCreateSchema())
    session, account = db_session(), current_account()
    blob, overrides = params["source_blob"], params["overrides"]
    setup = records.create_setup(
        session, settings(), account, source_url=blob["url"], checksum=blob["checksum"], version=blob["version"],
        app_params=params["app"], overrides=records.Overrides(
            dict(overrides.get("env") or {}),
            [entry["url"] or entry["name"] for entry in overrides.get("buildpacks") or ()]))
    answer = _schema().dump(setup)
    session.commit()  # the builder can only claim a committed build
    nudge_workers(settings().data_dir)
    return answer, 202


@blueprint.get("/app-setups/<setup_ref>")
@describe(summary="An app setup: its status, manifest errors, build and postdeploy result", response=AppSetupSchema)
def show_app_setup(setup_ref: str) -> Reply:
    return _schema().dump(records.get_setup(db_session(), current_account_id(), setup_ref))
