"""Collaborators: other accounts that may see and change an app (not rename, destroy or share it)."""
from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account, find_account_by_email
from berth.errors import Forbidden, InvalidParams, NotFound
from berth.platform.models import App, Collaborator


def collaborators_query(app: App) -> Select[tuple[Collaborator]]:
    return select(Collaborator).where(Collaborator.app_id == app.id)


def _find_account(session: Session, ref: str) -> Account | None:
    if UUID_PATTERN.match(ref):
        return session.get(Account, ref.lower())
    return find_account_by_email(session, ref)


def add_collaborator(session: Session, caller: Account, app: App, user_ref: str) -> Collaborator:
    if app.owner_id != caller.id:
        raise Forbidden("Only the app owner can add collaborators.")
    account = _find_account(session, user_ref)
    if account is None:
        raise NotFound("Couldn't find that user.", resource="user")
    if account.id == app.owner_id:
        raise InvalidParams("The app owner is already a collaborator.")
    if session.scalar(collaborators_query(app).where(Collaborator.account_id == account.id)):
        raise InvalidParams(f"{account.email} is already a collaborator on {app.name}.")
    collaborator = Collaborator(app_id=app.id, account_id=account.id)
    collaborator.app, collaborator.account = app, account
    session.add(collaborator)
    session.flush()
    return collaborator


def get_collaborator(session: Session, app: App, ref: str) -> Collaborator:
    query = collaborators_query(app)
    if UUID_PATTERN.match(ref):
        query = query.where((Collaborator.id == ref.lower()) | (Collaborator.account_id == ref.lower()))
    else:
        account = find_account_by_email(session, ref)
        query = query.where(Collaborator.account_id == (account.id if account else None))
    collaborator = session.scalar(query)
    if collaborator is None:
        raise NotFound("Couldn't find that collaborator.", resource="collaborator")
    return collaborator


def remove_collaborator(session: Session, caller: Account, app: App, ref: str) -> Collaborator:
    collaborator = get_collaborator(session, app, ref)
    # Collaborators may leave on their own; only the owner removes others.
    if app.owner_id != caller.id and collaborator.account_id != caller.id:
        raise Forbidden("Only the app owner can remove other collaborators.")
    session.delete(collaborator)
    session.flush()
    return collaborator
