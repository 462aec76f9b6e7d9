"""Log drains: URLs that receive a copy of an app's stream. Users add and remove their own; an
add-on's drains (`owner` set) come and go with its attachment."""
from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from berth.errors import InvalidParams, NotFound
from berth.outbound import TargetPolicy, TargetRefused
from berth.platform.logs import store
from berth.platform.logs.models import LogDrain
from berth.platform.models import App

MAX_DRAINS_PER_APP = 5
DRAIN_URL = re.compile(r"^(https?|syslog|syslog\+tls)://[^\s/@]*@?[^\s/]+(/\S*)?$")


def new_drain_token() -> str:
    return f"d.{uuid.uuid4()}"


def check_url(url: str) -> None:
    if not DRAIN_URL.match(url):
        raise InvalidParams("A drain URL is https://, http://, syslog:// or syslog+tls:// followed by a host.")


def add_drain(session: Session, app: App, url: str, *, owner: str | None = None,
              token: str | None = None, targets: TargetPolicy | None = None) -> LogDrain:
    """A new drain on `app`. User drains are limited per app, and must point where the
    installation's `targets` policy lets Berth deliver (public addresses only, by default); add-on
    drains are not limited (the add-on decides; the broker checked the URL), and reuse the token
    sent to the provider when there is one. The forwarder checks every address again."""
    check_url(url)
    if owner is None:
        try:
            (targets or TargetPolicy()).check_url(url, what="log drain URL")
        except TargetRefused as refused:
            raise InvalidParams(str(refused)) from None
        count = session.scalar(select(func.count()).select_from(LogDrain).where(
            LogDrain.app_id == app.id, LogDrain.owner.is_(None))) or 0
        if count >= MAX_DRAINS_PER_APP:
            raise InvalidParams(f"{app.name} already has {MAX_DRAINS_PER_APP} log drains; remove one first.")
        # The URL is stored encrypted (never equal twice), so duplicates are found after decryption.
        if url in {drain.url for drain in list_drains(session, app)}:
            raise InvalidParams(f"{app.name} already drains to that URL.")
    drain = LogDrain(app_id=app.id, url=url, token=token or new_drain_token(), owner=owner,
                     cursor=store.newest_id(session, app.id))  # from now on, as Logplex does
    session.add(drain)
    session.flush()
    return drain


def list_drains(session: Session, app: App) -> list[LogDrain]:
    return list(session.scalars(select(LogDrain).where(LogDrain.app_id == app.id)
                                .order_by(LogDrain.created_at, LogDrain.id)))


def owned_drains(session: Session, owner: str) -> list[LogDrain]:
    return list(session.scalars(select(LogDrain).where(LogDrain.owner == owner)))


def get_drain(session: Session, app: App, ref: str) -> LogDrain:
    """One of the app's drains by id, token (`d.<uuid>`) or URL (compared decrypted)."""
    for drain in list_drains(session, app):
        if ref in (drain.id, drain.token, drain.url):
            return drain
    raise NotFound("Couldn't find that log drain.", resource="log_drain")
