"""An app's domains: the default `<app>.<apps domain>` (kind `heroku`, not stored, it follows the
app's name) and custom domains (kind `custom`), each host name served by at most one app."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.accounts import UUID_PATTERN
from berth.errors import InvalidParams, NotFound
from berth.platform.apps import stable_id
from berth.platform.models import App, Domain
from berth.platform.router.table import HOSTNAME_RE


@dataclass(frozen=True)
class DomainView:
    """A domain as the API shows it, stored or the app's default one."""
    id: str
    app: App
    hostname: str
    kind: str              # heroku | custom
    cname: str | None
    created_at: datetime
    updated_at: datetime


def default_hostname(app: App, apps_domain: str) -> str:
    return f"{app.name}.{apps_domain}"


def _default(app: App, apps_domain: str) -> DomainView:
    hostname = default_hostname(app, apps_domain)
    return DomainView(stable_id("domain", hostname), app, hostname, "heroku", None, app.created_at, app.updated_at)


def _custom(domain: Domain, apps_domain: str) -> DomainView:
    return DomainView(domain.id, domain.app, domain.hostname, "custom", default_hostname(domain.app, apps_domain),
                      domain.created_at, domain.updated_at)


def list_domains(session: Session, app: App, apps_domain: str) -> list[DomainView]:
    stored = session.scalars(select(Domain).where(Domain.app_id == app.id).order_by(Domain.hostname))
    return [_default(app, apps_domain), *(_custom(domain, apps_domain) for domain in stored)]


def custom_hostnames(session: Session, app: App) -> list[str]:
    return list(session.scalars(select(Domain.hostname).where(Domain.app_id == app.id).order_by(Domain.hostname)))


def normalise(hostname: str, apps_domain: str) -> str:
    """`hostname` lower-cased without a trailing dot, or InvalidParams saying what is wrong."""
    name = hostname.strip().lower().removesuffix(".")
    if not HOSTNAME_RE.match(name) or "." not in name or name.rsplit(".", 1)[1].isdigit():
        raise InvalidParams(f"{hostname!r} is not a valid host name: use a name like www.example.com.")
    if name == apps_domain or name.endswith(f".{apps_domain}"):
        raise InvalidParams(f"{name} is under {apps_domain}, which Berth gives its apps; "
                            f"choose a domain of your own.")
    return name


def add_domain(session: Session, app: App, hostname: str, apps_domain: str) -> DomainView:
    name = normalise(hostname, apps_domain)
    taken = session.scalar(select(Domain).where(Domain.hostname == name))
    if taken is not None and taken.app_id == app.id:
        raise InvalidParams(f"{name} is already added to {app.name}.")
    if taken is not None:
        raise InvalidParams(f"{name} is currently in use by another app.")
    domain = Domain(app_id=app.id, hostname=name)
    domain.app = app
    try:
        with session.begin_nested():  # two apps adding the same name at once: the unique index decides
            session.add(domain)
            session.flush()
    except IntegrityError:
        raise InvalidParams(f"{name} is currently in use by another app.") from None
    return _custom(domain, apps_domain)


def get_domain(session: Session, app: App, ref: str, apps_domain: str) -> DomainView:
    default = _default(app, apps_domain)
    if ref.lower() in (default.id, default.hostname):
        return default
    return _custom(_stored(session, app, ref), apps_domain)


def _stored(session: Session, app: App, ref: str) -> Domain:
    query = select(Domain).where(Domain.app_id == app.id)
    if UUID_PATTERN.match(ref):
        query = query.where(Domain.id == ref.lower())
    else:
        query = query.where(Domain.hostname == ref.strip().lower().removesuffix("."))
    domain = session.scalar(query)
    if domain is None:
        raise NotFound(f"Couldn't find that domain on {app.name}.", resource="domain")
    return domain


def remove_domain(session: Session, app: App, ref: str, apps_domain: str) -> DomainView:
    default = _default(app, apps_domain)
    if ref.lower() in (default.id, default.hostname):
        raise InvalidParams(f"{default.hostname} is {app.name}'s default domain and cannot be removed.")
    domain = _stored(session, app, ref)
    view = _custom(domain, apps_domain)
    session.delete(domain)
    session.flush()
    return view
