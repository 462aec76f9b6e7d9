"""Attachments: an add-on's config vars injected into apps, each change one release per app."""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN, Account
from berth.broker.addon_records import AppRef, AttachmentFacts, AttachTarget, NewAddOn
from berth.broker.models import AddOn, AddOnState, Attachment
from berth.broker.naming import ATTACHMENT_NAME_PATTERN, COLORS, attachment_var_names
from berth.db import PreparedStatement, json_array_agg, new_id, utcnow
from berth.errors import ConfirmationRequired, Conflict, InvalidParams, NotFound
from berth.platform import apps, config_vars, releases
from berth.platform.logs import drains, tokens
from berth.platform.models import App

ATTACHMENT_NOT_FOUND = "Couldn't find that add-on attachment."
_attachments = Attachment.__table__


def addon_config(addon: AddOn | NewAddOn) -> dict[str, str]:
    return json.loads(addon.config or "{}")


def vars_in_app(config: dict[str, str], prefix: str, attachment_name: str) -> dict[str, str]:
    """An add-on's config (manifest names, `prefix`) as it appears in an app under `attachment_name`."""
    renamed = attachment_var_names(list(config), prefix, attachment_name)
    return {renamed[name]: value for name, value in config.items()}


def app_vars(addon: AddOn, attachment_name: str) -> dict[str, str]:
    return vars_in_app(addon_config(addon), addon.service.config_vars_prefix, attachment_name)


def declared_var_names(addon: AddOn | NewAddOn, attachment_name: str) -> list[str]:
    """Every var the add-on may set, as named in an app: what an attachment reserves there."""
    names = list(addon.service.config_vars) or list(addon_config(addon))
    return sorted(attachment_var_names(names, addon.service.config_vars_prefix,
                                       attachment_name).values())


def attachments_query(caller_id: str) -> Select[tuple[Attachment]]:
    """Attachments on apps the caller can see."""
    return select(Attachment).join(App, App.id == Attachment.app_id).where(apps.visible_to(caller_id))


def get_attachment(session: Session, caller_id: str, ref: str, *, app: App | None = None) -> Attachment:
    """By id, or by name within `app`; one the caller cannot see is reported as missing."""
    query = attachments_query(caller_id)
    if UUID_PATTERN.match(ref):
        query = query.where(Attachment.id == ref.lower())
    elif app is not None:
        query = query.where(Attachment.app_id == app.id, Attachment.name == ref)
    else:
        query = None  # type: ignore[assignment]
    found = session.scalar(query) if query is not None else None
    if found is None or (app is not None and found.app_id != app.id):
        raise NotFound(ATTACHMENT_NOT_FOUND, resource="add_on attachment")
    return found


def taken_names(app_id: Any) -> Any:
    """SQL scalar subquery: the attachment names taken on an app, as one JSON array; `app_id`
    may be a column of the enclosing statement."""
    return select(json_array_agg(Attachment.name)).where(Attachment.app_id == app_id).scalar_subquery()


def _insert_statement(insert_for: Any) -> PreparedStatement:
    """A name taken meanwhile (a concurrent request) writes nothing, instead of failing the
    transaction: the caller refuses it as taken."""
    now = bindparam("now", type_=_attachments.c.created_at.type)
    return PreparedStatement(insert_for(_attachments).values(
        id=bindparam("id"), addon_id=bindparam("addon_id"), app_id=bindparam("app_id"),
        name=bindparam("name"), namespace=bindparam("namespace"), created_at=now, updated_at=now)
        .on_conflict_do_nothing().returning(_attachments.c.id))


_INSERT = {"sqlite": _insert_statement(sqlite_insert), "postgresql": _insert_statement(pg_insert)}
_TARGET = PreparedStatement(select(taken_names(bindparam("app_id")), config_vars.var_owners(bindparam("app_id"))))


def attach_target(session: Session, app: App) -> AttachTarget:
    """What attaching into `app` must know of it, in one statement (the request's transaction)."""
    taken, owners = _TARGET.run_in(session, {"app_id": app.id})[0]
    return AttachTarget.from_raw(AppRef(app.id, app.name), taken, owners)


def choose_name(target: AttachTarget, prefix: str, requested: str | None) -> str:
    """`--as NAME`, else the service's prefix, else `<PREFIX>_<COLOR>` when that is taken."""
    app_name, taken = target.app.name, target.taken_names
    if requested is not None:
        if not ATTACHMENT_NAME_PATTERN.match(requested):
            raise InvalidParams("Attachment names are upper-case letters, digits and underscores, "
                                "starting with a letter.")
        if requested in taken:
            raise InvalidParams(_name_taken(requested, app_name))
        return requested
    if prefix not in taken:
        return prefix
    free = [f"{prefix}_{color}" for color in COLORS if f"{prefix}_{color}" not in taken]
    if not free:
        raise InvalidParams(f"{app_name} has no free attachment name for {prefix}; choose one.")
    return secrets.choice(free)


def _name_taken(name: str, app_name: str) -> str:
    return f"{name} is already an attachment name on {app_name}."


def check_clashes(target: AttachTarget, var_names: list[str], confirm: str | None, owner: str) -> None:
    """Overwriting a user's config var needs `confirm` = the app's name; another add-on's, never."""
    app_name = target.app.name
    by_user, by_other = config_vars.owned_name_clashes(target.var_owners, var_names, owner)
    if by_other:
        raise Conflict(f"{', '.join(by_other)} on {app_name} belong to another add-on attachment; "
                       "attach with another name (--as).")
    if by_user and confirm != app_name:
        raise ConfirmationRequired(
            f"This would overwrite {', '.join(by_user)} on {app_name}. To proceed, confirm with the "
            f"app name {app_name}.")


def reserve_attachment(session: Session, target: AttachTarget, addon: AddOn | NewAddOn, *,
                       name: str | None, confirm: str | None,
                       namespace: str | None = None) -> AttachmentFacts:
    """Choose the attachment's name, check its vars against the app's, and write it: it reserves
    its name and vars now; they are filled once the add-on is live (`go_live`)."""
    chosen = choose_name(target, addon.service.config_vars_prefix, name)
    attachment = AttachmentFacts(new_id(), target.app.id, chosen)
    check_clashes(target, declared_var_names(addon, chosen), confirm, attachment.id)
    written = _INSERT[session.get_bind().dialect.name].run_in(session, {
        "id": attachment.id, "addon_id": addon.id, "app_id": target.app.id, "name": chosen,
        "namespace": namespace, "now": utcnow()})
    if not written:
        raise InvalidParams(_name_taken(chosen, target.app.name))
    if "log_input" in addon.service.requires:  # the provider may write into this app's stream
        app = session.get(App, target.app.id)
        assert app is not None
        tokens.issue_input_token(session, app, source=addon.name, owner=attachment.id)
    return attachment


def create_attachment(session: Session, app: App, addon: AddOn, *, name: str | None,
                      confirm: str | None, user: Account | None,
                      namespace: str | None = None) -> Attachment:
    """Attach an existing add-on to `app` (live at once if the add-on is provisioned)."""
    reserved = reserve_attachment(session, attach_target(session, app), addon, name=name,
                                  confirm=confirm, namespace=namespace)
    session.expire(addon, ["attachments"])  # written in Core: the loaded list lacks it
    attachment = session.get(Attachment, reserved.id)
    assert attachment is not None
    if addon.state == AddOnState.PROVISIONED:
        go_live(session, attachment, user)
    return attachment


def owner_attachment(addon: AddOn) -> Attachment | None:
    """The attachment on the add-on's own app (the one the provision call speaks for)."""
    return next((att for att in addon.attachments if att.app_id == addon.app_id), None)


@dataclass(frozen=True)
class LiveAddon:
    """What going live needs of a provisioned add-on (read by the worker in the statement that
    made it provisioned, or from the ORM object)."""

    id: str
    name: str
    app_id: str | None
    prefix: str
    config: dict[str, str]
    log_drain_url: str | None = None
    log_drain_token: str | None = None


@dataclass(frozen=True)
class Target:
    attachment_id: str
    app_id: str
    name: str


def live_addon(addon: AddOn) -> LiveAddon:
    return LiveAddon(addon.id, addon.name, addon.app_id, addon.service.config_vars_prefix, addon_config(addon),
                     addon.log_drain_url, addon.log_drain_token)


def go_live(session: Session, attachment: Attachment, user: Account | None) -> None:
    """The add-on is provisioned: its config into the app, and its log drain (if it gave one)."""
    app = session.get(App, attachment.app_id)
    assert app is not None
    releases.lock_app(session, app)
    session.flush()  # what the session holds must reach the database before statements read it
    go_live_everywhere(session, live_addon(attachment.addon),
                       [Target(attachment.id, attachment.app_id, attachment.name)], user)
    session.expire(app, ["released_at", "updated_at"])


def go_live_everywhere(session: Session, addon: LiveAddon, targets: list[Target], user: Account | None) -> None:
    """`go_live` on every target at once (a release each, in a constant number of statements).
    On PostgreSQL the caller holds the targets' apps' lock."""
    config_vars.set_owned_configs(session, [config_vars.OwnedConfig(
        target.app_id, target.attachment_id, vars_in_app(addon.config, addon.prefix, target.name),
        f"Attach {target.name} (@ref:{addon.name})", user.id if user else None) for target in targets])
    if addon.log_drain_url:
        for target in targets:
            if drains.owned_drains(session, target.attachment_id):
                continue
            app = session.get(App, target.app_id)
            assert app is not None
            # The provider was given one token with the provision call: it is the owner app's drain.
            token = addon.log_drain_token if target.app_id == addon.app_id else None
            drains.add_drain(session, app, addon.log_drain_url, owner=target.attachment_id, token=token)


def inject(session: Session, attachment: Attachment, user: Account | None, description: str) -> None:
    app = session.get(App, attachment.app_id)
    assert app is not None
    config_vars.set_owned_config(session, app, attachment.id, app_vars(attachment.addon, attachment.name),
                                 user, description)


def detach(session: Session, attachment: Attachment, user: Account | None) -> None:
    """Remove the attachment and its vars (a release on its app, if it had any)."""
    app = session.get(App, attachment.app_id)
    if app is not None and config_vars.owned_names(session, app, attachment.id):
        config_vars.set_owned_config(session, app, attachment.id, {}, user,
                                     f"Detach {attachment.name} (@ref:{attachment.addon.name})")
    tokens.revoke_owned(session, attachment.id)  # its log input and drain go with it
    session.delete(attachment)
    session.flush()


def release_config_everywhere(session: Session, addon: AddOn, user: Account | None,
                              description: str) -> None:
    """After the add-on's config changed: one release on every attached app."""
    for attachment in list(addon.attachments):
        inject(session, attachment, user, description)


def drain_addon(session: Session, owner: str) -> dict[str, object] | None:
    """How a log drain owned by an attachment names its add-on (the platform only knows the owner)."""
    attachment = session.get(Attachment, owner)
    if attachment is None:
        return None
    addon = attachment.addon
    return {"id": addon.id, "name": addon.name,
            "app": {"id": addon.app.id, "name": addon.app.name} if addon.app else None}
