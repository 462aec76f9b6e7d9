"""An app's buildpacks (Platform API buildpack installations): what its next build uses, in order.

References are checked for their form here; fetching them (and the operator's rule for local paths)
is the build's business (berth.platform.buildpack_runner).
"""
from __future__ import annotations

from typing import Sequence
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from berth.errors import InvalidParams
from berth.outbound import TargetPolicy, TargetRefused
from berth.platform.buildpack_runner.references import BUILTIN_ORDER, REGISTRY_BLOB_URL, builtin_name
from berth.platform.models import App, BuildpackInstallation

MAX_BUILDPACKS = 8


def list_installations(session: Session, app: App) -> list[BuildpackInstallation]:
    return list(session.scalars(select(BuildpackInstallation).where(BuildpackInstallation.app_id == app.id)
                                .order_by(BuildpackInstallation.ordinal)))


def replace_installations(session: Session, app: App, references: Sequence[str],
                          policy: TargetPolicy) -> list[BuildpackInstallation]:
    """Replace the app's buildpacks with `references`, in order; nothing changes when one is refused."""
    cleaned = [reference.strip() for reference in references]
    if len(cleaned) > MAX_BUILDPACKS:
        raise InvalidParams(f"An app may have at most {MAX_BUILDPACKS} buildpacks.")
    for index, reference in enumerate(cleaned):
        check_reference(reference, policy)
        if reference in cleaned[:index]:
            raise InvalidParams(f"Buildpack {reference} is listed twice; list each buildpack once.")
    session.execute(delete(BuildpackInstallation).where(BuildpackInstallation.app_id == app.id))
    installed = [BuildpackInstallation(app_id=app.id, ordinal=ordinal, url=reference, name=display_name(reference))
                 for ordinal, reference in enumerate(cleaned)]  # 0-based, as Heroku (the CLI adds 1)
    session.add_all(installed)
    session.flush()
    return installed


def display_name(reference: str) -> str:
    """`heroku/<name>` for a built-in however it was named (Heroku's name for its own), else the reference."""
    builtin = builtin_name(reference)
    return f"heroku/{builtin}" if builtin else reference


def registry_blob_url(slug: str) -> str:
    """What Berth's stand-in for Heroku's buildpack registry answers for `namespace/name`: the
    registry URL of a built-in, else the name itself (so that setting it reaches Berth's own check
    and its message)."""
    builtin = builtin_name(slug)
    return REGISTRY_BLOB_URL.format(name=builtin) if builtin else slug


def check_reference(reference: str, policy: TargetPolicy) -> None:
    """A built-in (`python`, `heroku/python`), an http(s) git or tarball URL (`#ref` allowed) to a
    host Berth may reach, or an absolute path / file:// URL (usable only where the operator allows)."""
    if not reference:
        raise InvalidParams("A buildpack reference is empty.")
    if builtin_name(reference):
        return
    try:
        parts = urlsplit(reference)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme in ("http", "https") and parts.hostname:
        try:
            policy.check_url(reference, what="buildpack URL")
        except TargetRefused as exc:
            raise InvalidParams(str(exc)) from None
        return
    if reference.startswith("/") or (parts is not None and parts.scheme == "file"):
        return
    raise InvalidParams(
        f"Buildpack {reference} is not one Berth can use: name a built-in ({', '.join(BUILTIN_ORDER)}, also as "
        "heroku/<name>) or give a git or tarball URL (https://…, optionally #branch, tag or commit).")
