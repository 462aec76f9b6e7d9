"""/apps/{app}/dynos for one-off dynos (`heroku run`, `run:detached`, `ps`, `ps:stop run.N`).
Formation dynos are the run core's (next part); these endpoints list and stop one-offs only."""
from __future__ import annotations

from typing import Any

from berth.httpapi.body import load
from berth.httpapi.context import current_account_id, db_session
from berth.httpapi.openapi import describe
from berth.jobs.wakeup import nudge_rendezvous
from berth.platform import apps, one_off_dynos
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.schemas import DynoCreateSchema, DynoSchema

Reply = Any


@blueprint.post("/apps/<app_ref>/dynos")
@describe(summary="Start a one-off dyno (attach: a rendezvous URL to attach to)", response=DynoSchema,
          request=DynoCreateSchema, status=201)
def create_dyno(app_ref: str) -> Reply:
    params = load(DynoCreateSchema())
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    created = one_off_dynos.create(
        session, app, command=params["command"], attach=params["attach"], env=params["env"],
        size=params["size"].lower(), time_to_live=params["time_to_live"], type=params["type"],
        tty=params["attach"] and not params["force_no_tty"] and "COLUMNS" in params["env"])
    attach_url = f"{settings().rendezvous_base}/{created.secret}" if created.secret else None
    answer = DynoSchema(attach_url=attach_url).dump(created.dyno)
    session.commit()  # the rendezvous host starts a detached dyno as soon as it sees it
    nudge_rendezvous(settings().data_dir)
    return answer, 201


@blueprint.get("/apps/<app_ref>/dynos")
@describe(summary="An app's running one-off dynos", response=DynoSchema, many=True)
def list_dynos(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DynoSchema(many=True).dump(one_off_dynos.running(session, app))


@blueprint.get("/apps/<app_ref>/dynos/<dyno_ref>")
@describe(summary="One one-off dyno by name or id", response=DynoSchema)
def show_dyno(app_ref: str, dyno_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DynoSchema().dump(one_off_dynos.find(session, app, dyno_ref))


@blueprint.delete("/apps/<app_ref>/dynos/<dyno_ref>")
@blueprint.post("/apps/<app_ref>/dynos/<dyno_ref>/actions/stop")
@describe(summary="Stop a one-off dyno (it is never restarted)", status=202)
def stop_dyno(app_ref: str, dyno_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    one_off_dynos.request_stop(session, one_off_dynos.find(session, app, dyno_ref))
    session.commit()  # the rendezvous host stops the process once it sees `stopping`
    nudge_rendezvous(settings().data_dir)
    return {}, 202
