"""Releases as the API shows them (with their release phase's output_stream_url) and that output
stream itself: plain text, followed until the release phase's outcome is stored."""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy.orm import Session

from berth import signed_urls
from berth.errors import NotFound
from berth.httpapi.context import database, db_session, public
from berth.httpapi.openapi import describe
from berth.platform import releases
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.api.output_streams import output_response
from berth.platform.models import App, Release, ReleasePhase
from berth.platform.release_phase import records
from berth.platform.schemas import ReleaseSchema

Reply = Any
OUTPUT_PURPOSE = "release:output"
OUTPUT_URL_SECONDS = 24 * 3600


def release_schema(session: Session, app: App, shown: Sequence[Release], **kwargs: Any) -> ReleaseSchema:
    """The schema that dumps `shown` (releases of `app`): which is current, and a self-authorising
    output_stream_url (for a day) for each that has a release phase."""
    phases = records.of_releases(session, [release.id for release in shown])
    urls = {release_id: f"{settings().api_url}/release-output/"
                        f"{signed_urls.sign(OUTPUT_PURPOSE, phase.id, ttl_seconds=OUTPUT_URL_SECONDS)}"
            for release_id, phase in phases.items()}
    return ReleaseSchema(current_version=releases.current_version(session, app), output_stream_urls=urls, **kwargs)


@blueprint.get("/release-output/<token>")
@public
@describe(summary="A release phase's output as it is written (plain text, resumable with Range: bytes=N-); "
                  "closed once the release succeeded or failed", streams=("text/plain",))
def release_output(token: str) -> Reply:
    try:
        phase_id = signed_urls.verify(OUTPUT_PURPOSE, token)
    except signed_urls.InvalidToken:
        raise NotFound("This release output URL is invalid or has expired. GET the release again for a fresh "
                       "output_stream_url.", resource="release") from None
    if db_session().get(ReleasePhase, phase_id) is None:
        raise NotFound("Couldn't find that release.", resource="release")
    db = database()
    return output_response(phase_id, lambda: records.finished_by_id(db, phase_id), records.OUTPUT_KIND)
