"""/apps/{app}/builds, a build's output stream, and DELETE /apps/{app}/build-cache."""
from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

from flask import request

from berth import signed_urls
from berth.errors import NotFound
from berth.httpapi.body import load
from berth.httpapi.context import current_account, current_account_id, database, db_session, public
from berth.httpapi.openapi import describe
from berth.httpapi.pagination import paginate
from berth.jobs.wakeup import nudge_workers
from berth.platform import apps
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.api.output_streams import output_response
from berth.platform.app_setups import records as setups
from berth.platform.builds import records
from berth.platform.builds.job import cache_dir
from berth.platform.builds.output import BUILDS
from berth.platform.builds.schemas import BuildCacheSchema, BuildCreateSchema, BuildSchema
from berth.platform.models import Build

Reply = Any
OUTPUT_PURPOSE = "build:output"
OUTPUT_URL_SECONDS = 24 * 3600
BUILD_RANGE_FIELDS = {"id": Build.id, "started_at": Build.created_at, "created_at": Build.created_at,
                      "updated_at": Build.updated_at}


def output_stream_url(build: Build) -> str:
    return output_stream_url_of(build.id)


def output_stream_url_of(build_id: str) -> str:
    """Self-authorising (the Heroku CLI sends no key to a host that is not Heroku's), for a day."""
    token = signed_urls.sign(OUTPUT_PURPOSE, build_id, ttl_seconds=OUTPUT_URL_SECONDS)
    return f"{settings().api_url}/build-output/{token}"


def _schema(**kwargs: Any) -> BuildSchema:
    return BuildSchema(output_stream_url=output_stream_url, **kwargs)


@blueprint.post("/apps/<app_ref>/builds")
@describe(summary="Build a source tarball into a slug and a release", request=BuildCreateSchema,
          response=BuildSchema, status=201)
def create_build(app_ref: str) -> Reply:
    params = load(BuildCreateSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    blob = params["source_blob"]
    buildpacks = [entry["url"] or entry["name"] for entry in params["buildpacks"] or ()]
    build = records.create_build(session, settings(), app, account, source_url=blob["url"],
                                 checksum=blob["checksum"], version=blob["version"], buildpacks=buildpacks)
    answer = _schema().dump(build)
    session.commit()  # the builder can only claim a committed build
    nudge_workers(settings().data_dir)
    return answer, 201


@blueprint.get("/apps/<app_ref>/builds")
@describe(summary="An app's builds", response=BuildSchema, many=True)
def list_builds(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    # Oldest first by default, like releases (ids are random; the CLI asks for created_at itself).
    page = paginate(session, records.builds_query(app), BUILD_RANGE_FIELDS, request.headers.get("Range"),
                    default="created_at", tie_breaker=Build.id)
    return page.respond(_schema(many=True).dump(page.rows))


@blueprint.get("/apps/<app_ref>/builds/<build_ref>")
@describe(summary="One build of an app", response=BuildSchema)
def show_build(app_ref: str, build_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return _schema().dump(records.get_build(session, app, build_ref))


@blueprint.get("/build-output/<token>")
@public
@describe(summary="A build's output as it is written (plain text, resumable with Range: bytes=N-); closed "
                  "once its final status is stored",
          streams=("text/plain",))
def build_output(token: str) -> Reply:
    try:
        build_id = signed_urls.verify(OUTPUT_PURPOSE, token)
    except signed_urls.InvalidToken:
        raise NotFound("This build output URL is invalid or has expired. GET the build again for a fresh "
                       "output_stream_url.", resource="build") from None
    if db_session().get(Build, build_id) is None and not setups.keeps_output(db_session(), build_id):
        raise NotFound(records.NOT_FOUND, resource="build")
    db = database()
    return output_response(build_id, lambda: records.finished_by_id(db, build_id), BUILDS)


@blueprint.delete("/apps/<app_ref>/build-cache")
@describe(summary="Empty the app's build cache: its next build starts from nothing", response=BuildCacheSchema)
def purge_build_cache(app_ref: str) -> Reply:
    app = apps.get_app(db_session(), current_account_id(), app_ref)
    directory = cache_dir(settings().data_dir, app.id)
    if directory.exists():
        # Out of its place at once (a build starting now gets an empty cache), then deleted.
        aside = directory.with_name(f".purged-{app.id}-{uuid.uuid4().hex[:8]}")
        os.rename(directory, aside)
        shutil.rmtree(aside, ignore_errors=True)
    return BuildCacheSchema().dump({"app": {"id": app.id, "name": app.name}, "cleared": True})
