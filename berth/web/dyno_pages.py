"""Restarting and stopping dynos from the Formation tab: each button posts a CSRF-protected form
that goes through the API's own validation and service (`dyno_actions`), so the page refuses
exactly what the API refuses, with its message, on the tab itself."""
from __future__ import annotations

from typing import Any

from berth.errors import BerthError
from berth.httpapi.body import load
from berth.httpapi.context import current_account, db_session
from berth.platform import dyno_actions
from berth.platform.schemas import DynoTargetSchema
from berth.web.dashboard import _app_error, _done, _find_app, _formation_context
from berth.web.pages import blueprint, login_required, settings

Reply = Any


@blueprint.post("/dashboard/apps/<app_ref>/dynos/restart")
@login_required
def restart_all_dynos_page(app_ref: str) -> Reply:
    return _act(app_ref, "restart", None, "Restarting all dynos: the runner replaces them one by one.")


@blueprint.post("/dashboard/apps/<app_ref>/dynos/<dyno>/restart")
@login_required
def restart_dyno_page(app_ref: str, dyno: str) -> Reply:
    return _act(app_ref, "restart", dyno, f"Restarting {dyno}: the runner replaces it.")


@blueprint.post("/dashboard/apps/<app_ref>/dynos/<dyno>/stop")
@login_required
def stop_dyno_page(app_ref: str, dyno: str) -> Reply:
    return _act(app_ref, "stop", dyno, f"Stopping {dyno}.")


def _act(app_ref: str, action: dyno_actions.Action, dyno: str | None, message: str) -> Reply:
    app = _find_app(app_ref)
    try:
        ref = None if dyno is None else load(DynoTargetSchema(), {"dyno": dyno})["dyno"]
        dyno_actions.request(db_session(), settings().data_dir, app, current_account(), action, ref)
    except BerthError as error:  # nothing was recorded: the tab again, with the API's message
        return _app_error("formation", app, error, **_formation_context(app))
    return _done("web.app_formation", app, message)
