"""/apps, /users/{ref}/apps and /apps/{app}/collaborators."""
from __future__ import annotations

from functools import partial
from typing import Any

from flask import request

from berth import accounts
from berth.hooks import PARTNER_MAY_SEE_APP
from berth.httpapi.body import load
from berth.httpapi.context import (
    current_account,
    current_account_id,
    current_partner_addon_id,
    db_session,
    partner_access,
)
from berth.httpapi.openapi import describe
from berth.httpapi.pagination import paginate, parse_range
from berth.platform import apps, collaborators
from berth.platform.api import blueprint
from berth.platform.api.helpers import hooks, settings
from berth.platform.models import App, Collaborator
from berth.platform.schemas import (
    AppCreateSchema,
    AppOwnerEntry,
    AppSchema,
    AppUpdateSchema,
    CollaboratorCreateSchema,
    CollaboratorSchema,
)

Reply = Any
APP_RANGE_FIELDS = {"id": App.id, "name": App.name, "created_at": App.created_at,
                    "updated_at": App.updated_at}


def _app_schema(**kwargs: Any) -> AppSchema:
    return AppSchema(settings=settings(), **kwargs)


def _list_apps() -> Reply:
    page = paginate(db_session(), apps.visible_apps_query(current_account_id()), APP_RANGE_FIELDS,
                    request.headers.get("Range"), tie_breaker=App.id)
    return page.respond(_app_schema(many=True).dump(page.rows))


@blueprint.post("/apps")
@describe(summary="Create an app", request=AppCreateSchema, response=AppSchema, status=201)
def create_app() -> Reply:
    params = load(AppCreateSchema())
    app = apps.create_app(db_session(), settings(), current_account(), **params)
    return _app_schema().dump(app), 201


@blueprint.get("/apps")
@describe(summary="Apps the caller owns or collaborates on", response=AppSchema, many=True)
def list_apps() -> Reply:
    return _list_apps()


@blueprint.get("/users/<ref>/apps")
@describe(summary="Apps of an account (only the caller's own)", response=AppSchema, many=True)
def list_user_apps(ref: str) -> Reply:
    accounts.get_account(db_session(), current_account(), ref)
    return _list_apps()


@blueprint.get("/apps/<app_ref>")
@partner_access
@describe(summary="One app by id or name (an add-on's partner may read the apps it is attached to)",
          response=AppSchema)
def show_app(app_ref: str) -> Reply:
    partner = current_partner_addon_id()
    if partner is not None:
        # Which apps a partner reaches is the broker's knowledge: a question create_app wires.
        may_see = partial(hooks().ask, PARTNER_MAY_SEE_APP)
        return _app_schema().dump(apps.get_app_for_partner(db_session(), app_ref, partner, may_see))
    return _app_schema().dump(apps.get_app(db_session(), current_account_id(), app_ref))


@blueprint.patch("/apps/<app_ref>")
@describe(summary="Rename an app, or set maintenance or build stack", request=AppUpdateSchema,
          response=AppSchema)
def update_app(app_ref: str) -> Reply:
    changes = load(AppUpdateSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    return _app_schema().dump(apps.update_app(session, account, app, changes))


@blueprint.delete("/apps/<app_ref>")
@describe(summary="Destroy an app (owner only) and the add-ons it owns", response=AppSchema)
def destroy_app(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref, owner_only=True)
    body = _app_schema().dump(app)
    apps.destroy_app(session, hooks(), app)
    return body


@blueprint.get("/apps/<app_ref>/collaborators")
@describe(summary="An app's collaborators", response=CollaboratorSchema, many=True)
def list_collaborators(app_ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    columns = {"id": Collaborator.id, "created_at": Collaborator.created_at}
    header = request.headers.get("Range")
    page = paginate(session, collaborators.collaborators_query(app), columns, header,
                    tie_breaker=Collaborator.id)
    # Heroku lists the owner too (role "owner"): `heroku access` shows who owns the app.
    first_page = parse_range(header, list(columns), "id").start is None
    rows = [AppOwnerEntry.of(app), *page.rows] if first_page else page.rows
    return page.respond(CollaboratorSchema(many=True).dump(rows))


@blueprint.post("/apps/<app_ref>/collaborators")
@describe(summary="Add a collaborator (owner only)", request=CollaboratorCreateSchema,
          response=CollaboratorSchema, status=201)
def add_collaborator(app_ref: str) -> Reply:
    params = load(CollaboratorCreateSchema())
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    return CollaboratorSchema().dump(
        collaborators.add_collaborator(session, account, app, params["user"])), 201


@blueprint.get("/apps/<app_ref>/collaborators/<ref>")
@describe(summary="One collaborator by id or email", response=CollaboratorSchema)
def show_collaborator(app_ref: str, ref: str) -> Reply:
    session = db_session()
    app = apps.get_app(session, current_account_id(), app_ref)
    return CollaboratorSchema().dump(collaborators.get_collaborator(session, app, ref))


@blueprint.delete("/apps/<app_ref>/collaborators/<ref>")
@describe(summary="Remove a collaborator", response=CollaboratorSchema)
def remove_collaborator(app_ref: str, ref: str) -> Reply:
    session, account = db_session(), current_account()
    app = apps.get_app(session, account.id, app_ref)
    return CollaboratorSchema().dump(collaborators.remove_collaborator(session, account, app, ref))
