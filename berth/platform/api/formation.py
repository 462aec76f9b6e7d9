"""/dyno-sizes and /apps/{app}/formation: the sizes dynos come in, and scaling process types."""
from __future__ import annotations

from typing import Any

from berth.errors import BadRequest
from berth.httpapi.body import load
from berth.httpapi.context import current_account, current_account_id, db_session
from berth.httpapi.openapi import describe
from berth.platform import apps, dyno_sizes, formation
from berth.platform.api import blueprint
from berth.platform.formation_schemas import DynoSizeSchema, FormationBatchSchema, FormationChangeSchema, FormationSchema

Reply = Any


@blueprint.get("/dyno-sizes")
@describe(summary="The sizes a dyno can have", response=DynoSizeSchema, many=True)
def list_dyno_sizes() -> Reply:
    return DynoSizeSchema(many=True).dump(dyno_sizes.SIZES)


@blueprint.get("/dyno-sizes/<size_ref>")
@describe(summary="One dyno size by name (case-insensitive, old names too) or id", response=DynoSizeSchema)
def show_dyno_size(size_ref: str) -> Reply:
    return DynoSizeSchema().dump(dyno_sizes.get(size_ref))


@blueprint.get("/apps/<app_ref>/available-dyno-sizes")
@describe(summary="The sizes the app's dynos can have (every size, on Berth)", response=DynoSizeSchema, many=True)
def list_available_dyno_sizes(app_ref: str) -> Reply:
    apps.get_app(db_session(), current_account_id(), app_ref)  # another user's app is a 404
    return DynoSizeSchema(many=True).dump(dyno_sizes.SIZES)


@blueprint.get("/apps/<app_ref>/formation")
@describe(summary="One entry per process type of the current release", response=FormationSchema, many=True)
def list_formation(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return FormationSchema(many=True).dump(formation.list_formation(session, app))


@blueprint.get("/apps/<app_ref>/formation/<ref>")
@describe(summary="One process type's formation, by type or id", response=FormationSchema)
def show_formation(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return FormationSchema().dump(formation.get_process(session, app, ref))


@blueprint.patch("/apps/<app_ref>/formation")
@describe(summary="Scale or resize several process types at once (all or none); makes no release",
          request=FormationBatchSchema, response=FormationSchema, many=True)
def batch_update_formation(app_ref: str) -> Reply:
    body = load(FormationBatchSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    changes = [_change(update["type"], update) for update in body["updates"]]
    return FormationSchema(many=True).dump(formation.update(session, app, account.email, changes))


@blueprint.patch("/apps/<app_ref>/formation/<ref>")
@describe(summary="Scale or resize one process type; makes no release", request=FormationChangeSchema,
          response=FormationSchema)
def update_formation(app_ref: str, ref: str) -> Reply:
    body = load(FormationChangeSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    kind = formation.get_process(session, app, ref).type
    after = formation.update(session, app, account.email, [_change(kind, body)])
    return FormationSchema().dump(next(entry for entry in after if entry.type == kind))


def _change(kind: str, update: dict[str, Any]) -> formation.Change:
    if "quantity" not in update and "size" not in update and "dyno_size" not in update:
        raise BadRequest(f"Nothing to change for {kind}: send a quantity, a size, or both.")
    return formation.Change(kind, update.get("quantity"), update.get("size", update.get("dyno_size")))
