"""The app pages about code: the Builds tab (an app's builds, each one's output, a running build's
output followed as it is written) and rolling back from the Activity tab (a confirm step, then the
API's own rollback, so the page refuses exactly what the API refuses, with its message).
"""
from __future__ import annotations

from typing import Any, Iterator

from flask import Response, request
from sqlalchemy import select

from berth.errors import BerthError
from berth.httpapi.context import current_account, database, db_session
from berth.platform import deploys, releases
from berth.platform.builds import records
from berth.platform.builds.output import follow
from berth.platform.models import App, Build, Release, ReleaseStatus
from berth.platform.slug_store import slug_store_of
from berth.web.dashboard import _app_error, _app_page, _done, _find_app
from berth.web.pages import blueprint, login_required, settings

Reply = Any
RECENT_BUILDS = 50
RECENT_RELEASES = 100
# Why a release cannot be rolled back to, in the words a person needs (the API says the same on POST).
NOT_ELIGIBLE = {
    ReleaseStatus.EXPIRED: "Expired: its code was deleted by slug retention, so it cannot be rolled back to.",
    ReleaseStatus.FAILED: "Failed: its release command failed, so it cannot be rolled back to.",
    ReleaseStatus.PENDING: "Its release command is still running; it cannot be rolled back to yet.",
}


# -- Builds ---------------------------------------------------------------------------------------

def _release_versions(builds: list[Build]) -> dict[str, int]:
    """Release id -> version for the releases these builds cut, in one query."""
    ids = [build.release_id for build in builds if build.release_id]
    if not ids:
        return {}
    rows = db_session().execute(select(Release.id, Release.version).where(Release.id.in_(ids)))
    return {release_id: version for release_id, version in rows}


@blueprint.get("/dashboard/apps/<app_ref>/builds")
@login_required
def app_builds(app_ref: str) -> Reply:
    app = _find_app(app_ref)
    query = records.builds_query(app).order_by(Build.created_at.desc(), Build.id).limit(RECENT_BUILDS)
    builds = list(db_session().scalars(query))
    return _app_page("builds", app, builds=builds, status_of=records.status_of,
                     release_versions=_release_versions(builds))


def _output_so_far(build: Build) -> bytes:
    """What the build has written so far, read the way its output stream reads it."""
    return b"".join(follow(settings().data_dir, build.id, lambda: True, keepalive=None))


@blueprint.get("/dashboard/apps/<app_ref>/builds/<build_ref>")
@login_required
def app_build(app_ref: str, build_ref: str) -> Reply:
    app = _find_app(app_ref)
    build = records.get_build(db_session(), app, build_ref)
    written = _output_so_far(build)
    return _app_page("builds", app, template="app_build", build=build, build_status=records.status_of(build),
                     running=not records.is_finished(build), output=written.decode("utf-8", errors="replace"),
                     offset=len(written), release_versions=_release_versions([build]))


def _skip(chunks: Iterator[bytes], offset: int) -> Iterator[bytes]:
    """The stream from byte `offset` on (what the page already shows is not sent again)."""
    for chunk in chunks:
        if offset >= len(chunk):
            offset -= len(chunk)
            continue
        yield chunk[offset:]
        offset = 0


@blueprint.get("/dashboard/apps/<app_ref>/builds/<build_ref>/output")
@login_required
def app_build_output(app_ref: str, build_ref: str) -> Reply:
    """A build's output from `offset`, streamed until the build is finished: what the build page's
    script follows (same origin as the page, and the visitor's own access check)."""
    build = records.get_build(db_session(), _find_app(app_ref), build_ref)
    offset = max(request.args.get("offset", 0, type=int) or 0, 0)
    db, data_dir, build_id = database(), settings().data_dir, build.id
    chunks = follow(data_dir, build_id, lambda: records.finished_by_id(db, build_id), keepalive=None)
    return Response(_skip(chunks, offset), mimetype="text/plain",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# -- Activity: releases and rollback --------------------------------------------------------------

def _activity(app: App) -> dict[str, Any]:
    session = db_session()
    query = releases.releases_query(app).order_by(Release.version.desc()).limit(RECENT_RELEASES)
    return {"releases": list(session.scalars(query)), "current": releases.current_version(session, app),
            "not_eligible": NOT_ELIGIBLE}


@blueprint.get("/dashboard/apps/<app_ref>/activity")
@login_required
def app_activity(app_ref: str) -> Reply:
    app = _find_app(app_ref)
    return _app_page("activity", app, **_activity(app))


def _release(app: App, version: int) -> Release:
    return releases.get_release(db_session(), app, str(version))


@blueprint.get("/dashboard/apps/<app_ref>/activity/rollback/<int:version>")
@login_required
def confirm_rollback(app_ref: str, version: int) -> Reply:
    app = _find_app(app_ref)
    target = _release(app, version)
    current = releases.current_version(db_session(), app)
    return _app_page("activity", app, template="app_rollback", target=target, current=current,
                     refusal=NOT_ELIGIBLE.get(ReleaseStatus(target.status)))


@blueprint.post("/dashboard/apps/<app_ref>/activity/rollback/<int:version>")
@login_required
def rollback(app_ref: str, version: int) -> Reply:
    app = _find_app(app_ref)
    session = db_session()
    try:
        made = deploys.rollback(session, slug_store_of(settings()), app, current_account(), str(version))
    except BerthError as error:
        return _app_error("activity", app, error, **_activity(app))
    return _done("web.app_activity", app, f"Rolled back to v{version}: v{made.version} is now the current release.")
