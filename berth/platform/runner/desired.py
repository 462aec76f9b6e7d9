"""What should run: per app, its current release and the dynos its formation asks for.

The current release is the newest succeeded one (a pending release is not live yet; a failed one
never is). A type runs `quantity` dynos named `<type>.1` … `<type>.<quantity>`, each from the
release's slug with the release's config, the size of its formation row."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from sqlalchemy import select

from berth.db import Database
from berth.platform import dyno_sizes, formation, releases
from berth.platform.dynos.backend import DynoSize, DynoSpec
from berth.platform.models import App, Release, ReleaseStatus, Slug


@dataclass(frozen=True)
class WantedDyno:
    app_id: str
    type: str
    number: int
    command: str
    size: str  # the formation's size key, `standard-1x`
    release_id: str
    release_version: int
    slug_checksum: str
    env: Mapping[str, str] = field(repr=False)  # secrets: never printed

    @property
    def name(self) -> str:
        return f"{self.type}.{self.number}"

    @property
    def web(self) -> bool:
        return self.type == "web"

    def spec(self, boot_timeout: float | None = None) -> DynoSpec:
        size = dyno_sizes.of_stored(self.size)
        limits = DynoSize(size.key, size.memory_bytes, 2 * size.memory_bytes, size.process_limit)
        extra = {} if boot_timeout is None else {"boot_timeout": boot_timeout}
        return DynoSpec(app_id=self.app_id, name=self.name, slug_checksum=self.slug_checksum, command=self.command,
                        env=dict(self.env), size=limits, web=self.web, release_version=self.release_version,
                        **extra)


@dataclass(frozen=True)
class AppWants:
    app_id: str
    app_name: str
    release_version: int | None  # None: no code live yet
    dynos: tuple[WantedDyno, ...]

    @property
    def wants_web(self) -> bool:
        return any(dyno.web for dyno in self.dynos)


def wanted(database: Database, configs: dict[str, Mapping[str, str]] | None = None) -> dict[str, AppWants]:
    """Every app's wants, read in one short read-only session. A release's config never changes:
    `configs` (release id → config) keeps them between rounds, so each is decrypted once; it is left
    holding only the current releases'."""
    configs = {} if configs is None else configs
    result: dict[str, AppWants] = {}
    current: set[str] = set()
    with database.session(write=False) as session:
        for app in session.scalars(select(App).order_by(App.name)):
            release = session.execute(select(Release.id, Release.version, Release.slug_id).where(
                Release.app_id == app.id, Release.status == ReleaseStatus.SUCCEEDED)
                .order_by(Release.version.desc()).limit(1)).first()
            checksum = (session.scalar(select(Slug.checksum).where(Slug.id == release.slug_id))
                        if release is not None and release.slug_id else None)
            if release is None or not checksum:
                result[app.id] = AppWants(app.id, app.name, None, ())
                continue
            current.add(release.id)
            if release.id not in configs:
                configs[release.id] = releases.release_config(session.get_one(Release, release.id))
            env = configs[release.id]
            dynos = []
            for entry in formation.list_formation(session, app):
                for number in range(1, entry.quantity + 1):
                    dynos.append(WantedDyno(app.id, entry.type, number, entry.command, entry.size.key, release.id,
                                            release.version, checksum, env))
            result[app.id] = AppWants(app.id, app.name, release.version, tuple(dynos))
    for release_id in set(configs) - current:
        del configs[release_id]
    return result
