"""/apps/{app}/config-vars and /apps/{app}/releases."""
from __future__ import annotations

from functools import partial
from typing import Any

from flask import request

from berth.errors import BadRequest
from berth.httpapi.body import json_body, load
from berth.httpapi.context import admitted_read, caller_rows, current_account, current_account_id, db_session
from berth.httpapi.openapi import describe, map_of_scalars
from berth.httpapi.pagination import paginate
from berth.httpapi.ratelimit import AdmittedRead
from berth.platform import apps, config_vars, releases
from berth.platform.api import blueprint
from berth.platform.api.release_output import release_schema
from berth.platform.models import Release
from berth.platform.schemas import ConfigVarsPatchSchema, ReleaseSchema

Reply = Any
# The API's hottest read: on PostgreSQL the request's admission rides in the same statement.
_VISIBLE_CONFIG = {by_id: AdmittedRead(partial(config_vars.visible_config_select, by_id=by_id))
                   for by_id in (True, False)}


def _visible_config(app_ref: str) -> tuple[AdmittedRead, dict[str, str]]:
    by_id, params = config_vars.visible_config_ref(app_ref)
    return _VISIBLE_CONFIG[by_id], params


@blueprint.get("/apps/<app_ref>/config-vars")
@describe(summary="An app's config vars", map_of_strings=True)
@admitted_read(_visible_config)
def show_config_vars(app_ref: str) -> Reply:
    return config_vars.config_from_rows(caller_rows())


@blueprint.patch("/apps/<app_ref>/config-vars")
@describe(summary="Set config vars (null unsets); a release is made before answering",
          map_of_strings=True, request_json=map_of_scalars(config_vars.NAME_PATTERN.pattern, 255))
def update_config_vars(app_ref: str) -> Reply:
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object of config var names to values.")
    changes = load(ConfigVarsPatchSchema(), {"config": body})["config"]
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    return config_vars.update_config(session, app, account, changes)


@blueprint.get("/apps/<app_ref>/releases")
@describe(summary="An app's releases (Range on version)", response=ReleaseSchema, many=True)
def list_releases(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    page = paginate(session, releases.releases_query(app),
                    {"version": Release.version, "id": Release.id, "created_at": Release.created_at,
                     "updated_at": Release.updated_at},
                    request.headers.get("Range"), default="version", tie_breaker=Release.version)
    return page.respond(release_schema(session, app, page.rows, many=True).dump(page.rows))


@blueprint.get("/apps/<app_ref>/releases/<ref>")
@describe(summary="One release by id or version", response=ReleaseSchema)
def show_release(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    release = releases.get_release(session, app, ref)
    return release_schema(session, app, [release]).dump(release)


@blueprint.get("/apps/<app_ref>/releases/<ref>/config-vars")
@describe(summary="An app's config vars as they were at a release", map_of_strings=True)
def show_release_config_vars(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return releases.release_config(releases.get_release(session, app, ref))
