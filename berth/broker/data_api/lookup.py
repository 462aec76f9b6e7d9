"""What every data-API answer starts from: the add-on the caller named, checked to be of the right
service and live, its config, and its provider's `info` action."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from berth.broker import actions, finders
from berth.broker.api.addons import provider_client
from berth.broker.attachments import addon_config
from berth.broker.models import AddOn, AddOnState
from berth.errors import NotFound
from berth.httpapi.context import current_account_id, db_session


@dataclass(frozen=True)
class DataAddOn:
    id: str
    name: str
    plan: str           # the plan's slug, e.g. essential-0
    created_at: datetime
    config: dict[str, str]
    info: dict[str, Any]  # what the provider's `info` action answered


def data_addon(ref: str, service: str, kind: str, *, with_info: bool = True) -> DataAddOn:
    """The add-on `ref` (id or name) of `service`, provisioned, with its provider's info (unless
    only its config is wanted: `with_info=False` spares the provider a call).

    404 for anything else, as Heroku's data API answers: the CLI turns a 404 into "not yet
    provisioned, run heroku addons:wait" and skips the add-on."""
    session = db_session()
    try:
        addon: AddOn = finders.get_addon(session, current_account_id(), ref)
    except NotFound:
        raise NotFound(f"Couldn't find that {kind}: {ref}.", resource="add_on") from None
    if addon.service.name != service:
        raise NotFound(f"{addon.name} is a {addon.service.name} add-on, not a {kind}.", resource="add_on")
    if addon.state != AddOnState.PROVISIONED:
        raise NotFound(f"{addon.name} is {addon.state}; run `heroku addons:wait {addon.name}` and try "
                       "again.", resource="add_on")
    found = DataAddOn(addon.id, addon.name, addon.plan.name, addon.created_at, addon_config(addon), {})
    if not with_info:
        return found
    call = actions.prepare(addon, "info")
    session.commit()  # hold no lock while the provider works: it may be in this very process
    answer = actions.apply(session, call, actions.call(provider_client(), call, {}))
    info = answer.get("result")
    return DataAddOn(found.id, found.name, found.plan, found.created_at, found.config,
                     info if isinstance(info, dict) else {})


def size(count: Any) -> str:
    """Bytes for people: 812 B, 8.1 MB, 1 GB."""
    if not isinstance(count, (int, float)) or isinstance(count, bool):
        return "unknown"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} TB"


def row(name: str, *values: Any) -> dict[str, Any]:
    """One line of `pg:info` / `redis:info`: the CLI prints `name: values…`, skipping empty rows."""
    return {"name": name, "values": [str(value) for value in values if value not in (None, "")]}
