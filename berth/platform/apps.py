"""Apps: create, find with access checks, rename, maintenance, destroy."""
from __future__ import annotations

import uuid
from typing import Any, Callable

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.config import Settings
from berth.errors import Forbidden, InvalidParams, NotFound
from berth.hooks import APP_DESTROYING, Hooks
from berth.platform import releases
from berth.platform.models import App, Collaborator
from berth.platform.naming import APP_NAME_PATTERN, generate_app_name
from berth.platform.stacks import resolve_stack

APP_NOT_FOUND = "Couldn't find that app."
NAME_TAKEN = "Name is already taken"


def stable_id(kind: str, name: str) -> str:
    """Regions and stacks are fixed catalogues: derive their ids from their names."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"berth:{kind}:{name}"))


def visible_to(caller_id: str | ColumnElement[str]) -> ColumnElement[bool]:
    """SQL condition: the caller owns the app or collaborates on it."""
    # correlate_except: a caller given as a column of an enclosing query (the API's admission)
    # stays that column here too, never a second FROM.
    collaborating = (select(Collaborator.app_id).where(Collaborator.account_id == caller_id)
                     .correlate_except(Collaborator))
    return or_(App.owner_id == caller_id, App.id.in_(collaborating))


def visible_apps_query(caller_id: str) -> Select[tuple[App]]:
    return select(App).where(visible_to(caller_id))


def app_reference(ref: str) -> ColumnElement[bool]:
    """SQL condition: the app named `ref`, or with the UUID `ref`."""
    return App.id == ref.lower() if UUID_PATTERN.match(ref) else App.name == ref


def get_app(session: Session, caller_id: str, ref: str, *, owner_only: bool = False) -> App:
    """By UUID or name. An app the caller cannot see is reported exactly like a missing one."""
    app = session.scalar(select(App).where(app_reference(ref), visible_to(caller_id)))
    if app is None:
        raise NotFound(APP_NOT_FOUND, resource="app")
    if owner_only and app.owner_id != caller_id:
        raise Forbidden("Only the app owner can do this.")
    return app


def get_app_for_partner(session: Session, ref: str, partner_addon_id: str,
                        may_see: Callable[[Session, str, App], bool]) -> App:
    """An app an add-on's partner may read: one the add-on is attached to (else 404)."""
    app = session.scalar(select(App).where(app_reference(ref)))
    if app is None or not may_see(session, partner_addon_id, app):
        raise NotFound(APP_NOT_FOUND, resource="app")
    return app


def _check_name(name: str) -> None:
    if not APP_NAME_PATTERN.match(name):
        raise InvalidParams("Name must start with a letter, end with a letter or digit and can only "
                            "contain lowercase letters, digits, and dashes; 3 to 30 characters.")


def _name_taken(session: Session, name: str, *, except_id: str | None = None) -> bool:
    existing = session.scalar(select(App.id).where(App.name == name))
    return existing is not None and existing != except_id


def _resolve_region(settings: Settings, region: str | None) -> str:
    if region is None or region in (settings.region, stable_id("region", settings.region)):
        return settings.region
    raise InvalidParams(f"Couldn't find that region: {region}. This Berth runs in {settings.region}.")


def create_app(session: Session, settings: Settings, owner: Account, *, name: str | None = None,
               region: str | None = None, stack: str | None = None) -> App:
    stack_name = resolve_stack(stack)
    region_name = _resolve_region(settings, region)
    if name is not None:
        _check_name(name)
        if _name_taken(session, name):
            raise InvalidParams(f"{NAME_TAKEN}: {name}.")
    candidates = [name] if name is not None else [generate_app_name() for _ in range(10)]
    for candidate in candidates:
        if name is None and _name_taken(session, candidate):
            continue
        app = App(name=candidate, owner_id=owner.id, region=region_name, stack=stack_name,
                  build_stack=stack_name)
        try:
            with session.begin_nested():  # a concurrent create of the same name loses cleanly
                session.add(app)
                session.flush()
        except IntegrityError:
            if name is not None:
                raise InvalidParams(f"{NAME_TAKEN}: {name}.") from None
            continue
        app.owner = owner
        releases.create_release(session, app, owner, "Initial release", config={})
        return app
    raise InvalidParams("Could not generate a free app name; please choose one.")


def update_app(session: Session, account: Account, app: App, changes: dict[str, Any]) -> App:
    if "name" in changes and changes["name"] != app.name:
        if app.owner_id != account.id:
            raise Forbidden("Only the app owner can rename it.")
        _check_name(changes["name"])
        if _name_taken(session, changes["name"], except_id=app.id):
            raise InvalidParams(f"{NAME_TAKEN}: {changes['name']}.")
        app.name = changes["name"]
    if "maintenance" in changes:
        app.maintenance = bool(changes["maintenance"])
    if "build_stack" in changes:
        app.build_stack = resolve_stack(changes["build_stack"])
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise InvalidParams(f"{NAME_TAKEN}: {changes.get('name')}.") from None
    return app


def destroy_app(session: Session, hooks: Hooks, app: App) -> App:
    # Listeners (the broker) detach and deprovision add-ons inside this same transaction.
    hooks.fire(APP_DESTROYING, session=session, app=app)
    session.delete(app)
    session.flush()
    return app
