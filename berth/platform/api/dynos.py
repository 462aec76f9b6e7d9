"""/apps/{app}/dynos and /apps/{app}/formations/{type}: an app's dynos (the runner's formation
dynos and the one-offs), starting one-off dynos (`heroku run`), and restarting or stopping dynos
(`heroku ps:restart`, `ps:stop`). Restarts and stops are requests the runner carries out (one-off
dynos: their host, the rendezvous host or the builder for release.N): 202 `{}`."""
from __future__ import annotations

from typing import Any

from berth.httpapi.body import load
from berth.httpapi.context import current_account, current_account_id, db_session
from berth.httpapi.openapi import describe
from berth.jobs.wakeup import nudge_rendezvous
from berth.platform import apps, dyno_actions, dynos_view, one_off_dynos
from berth.platform.api import blueprint
from berth.platform.api.helpers import settings
from berth.platform.schemas import DYNO_REF_PATTERN, DYNO_TYPE_PATTERN, DynoCreateSchema, DynoSchema, DynoTargetSchema

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
    answer = DynoSchema(attach_url=attach_url).dump(dynos_view.of_one_off(created.dyno, app))
    session.commit()  # the rendezvous host starts a detached dyno as soon as it sees it
    nudge_rendezvous(settings().data_dir)
    return answer, 201


@blueprint.get("/apps/<app_ref>/dynos")
@describe(summary="An app's dynos: formation dynos (both of a name while a deploy rolls) and running one-offs",
          response=DynoSchema, many=True)
def list_dynos(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DynoSchema(many=True).dump(dynos_view.app_dynos(session, app))


@blueprint.get("/apps/<app_ref>/dynos/<dyno_ref>")
@describe(summary="One dyno by name (the newest release's) or id", response=DynoSchema)
def show_dyno(app_ref: str, dyno_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return DynoSchema().dump(dynos_view.find(session, app, dyno_ref))


@blueprint.delete("/apps/<app_ref>/dynos")
@describe(summary="Restart every formation dyno (the runner replaces them)", status=202)
def restart_all_dynos(app_ref: str) -> Reply:
    return _act(app_ref, "restart", None)


@blueprint.delete("/apps/<app_ref>/dynos/<dyno_ref>")
@describe(summary="Restart a dyno, by name or id, or every dyno of a process type; a one-off dyno is stopped "
                  "(a release phase's release.N is not: 422, stop it instead)",
          status=202, path_patterns={"dyno_ref": DYNO_REF_PATTERN})
def restart_dyno(app_ref: str, dyno_ref: str) -> Reply:
    return _act(app_ref, "restart", load(DynoTargetSchema(), {"dyno": dyno_ref})["dyno"])


@blueprint.delete("/apps/<app_ref>/formations/<process_type>")
@describe(summary="Restart every dyno of a process type", status=202,
          path_patterns={"process_type": DYNO_TYPE_PATTERN})
def restart_process_type(app_ref: str, process_type: str) -> Reply:
    return _act(app_ref, "restart", load(DynoTargetSchema(), {"type": process_type})["type"], kind="type")


@blueprint.post("/apps/<app_ref>/dynos/<dyno_ref>/actions/stop")
@describe(summary="Stop a dyno, by name or id, or every dyno of a process type (formation dynos are replaced)",
          status=202, path_patterns={"dyno_ref": DYNO_REF_PATTERN})
def stop_dyno(app_ref: str, dyno_ref: str) -> Reply:
    return _act(app_ref, "stop", load(DynoTargetSchema(), {"dyno": dyno_ref})["dyno"])


@blueprint.post("/apps/<app_ref>/formations/<process_type>/actions/stop")
@describe(summary="Stop every dyno of a process type (formation dynos are replaced)", status=202,
          path_patterns={"process_type": DYNO_TYPE_PATTERN})
def stop_process_type(app_ref: str, process_type: str) -> Reply:
    return _act(app_ref, "stop", load(DynoTargetSchema(), {"type": process_type})["type"], kind="type")


def _act(app_ref: str, action: dyno_actions.Action, ref: str | None, *, kind: str = "dyno") -> Reply:
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    dyno_actions.request(session, settings().data_dir, app, account, action, ref, kind=kind)  # type: ignore[arg-type]
    return {}, 202
