"""Apps, their collaborators, config vars, slugs and releases."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from berth.accounts import Account
from berth.db import Base, EncryptedText, new_id, utcnow
from berth.jobs.queue import JobRecord


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    region: Mapped[str] = mapped_column(String(64))
    stack: Mapped[str] = mapped_column(String(64))
    build_stack: Mapped[str] = mapped_column(String(64))
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    released_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Account] = relationship(lazy="joined")


class Collaborator(Base):
    __tablename__ = "collaborators"
    __table_args__ = (UniqueConstraint("app_id", "account_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    app: Mapped[App] = relationship(lazy="joined")
    account: Mapped[Account] = relationship(lazy="joined")


class ConfigVar(Base):
    __tablename__ = "config_vars"
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(EncryptedText)
    # Set by whatever injected the var (an add-on attachment's id): users may not change it.
    # Opaque to the platform, which must not know about the broker.
    owner: Mapped[str | None] = mapped_column(String(36), index=True)


class Slug(Base):
    """A built app: a gzip tar of /app, stored content-addressed by its sha256 (Platform API slug)."""

    __tablename__ = "slugs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    checksum: Mapped[str | None] = mapped_column(String(80))  # "SHA256:<hex>", once the blob is stored
    size: Mapped[int | None] = mapped_column(BigInteger)
    process_types: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    commit: Mapped[str | None] = mapped_column(String(64))
    commit_description: Mapped[str | None] = mapped_column(String(1000))
    buildpack_provided_description: Mapped[str | None] = mapped_column(String(255))
    stack: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReleaseStatus(StrEnum):
    """`pending` while its release phase runs; only `succeeded` releases are ever current;
    `expired` once retention deleted its slug (it can no longer be rolled back to)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default=ReleaseStatus.SUCCEEDED)  # a ReleaseStatus
    user_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    # JSON object of the app's config at this release, encrypted as one value.
    config_snapshot: Mapped[str] = mapped_column(EncryptedText)
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id"), index=True)  # None: config only
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    app: Mapped[App] = relationship(lazy="joined")
    user: Mapped[Account | None] = relationship(lazy="joined")


class BuildpackInstallation(Base):
    """One of an app's buildpacks, in build order (Platform API buildpack installation)."""

    __tablename__ = "buildpack_installations"
    __table_args__ = (UniqueConstraint("app_id", "ordinal"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(1000))  # as the user named it: a built-in, a URL or a path
    name: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Build(JobRecord, Base):
    """A build of a source tarball into a slug and a release, run by the builder (a job: see
    berth.jobs.queue). Its Platform API status is derived from the job state."""

    __tablename__ = "builds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    source_url: Mapped[str] = mapped_column(String(2000))
    source_checksum: Mapped[str | None] = mapped_column(String(80))
    source_version: Mapped[str | None] = mapped_column(String(255))
    buildpacks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # references; [] = the app's
    stack: Mapped[str] = mapped_column(String(64))
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id", ondelete="SET NULL"))
    release_id: Mapped[str | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"))

    user: Mapped[Account] = relationship(lazy="joined")


class ReleasePhase(JobRecord, Base):
    """A release's release phase (runtime.md §5.2): its slug's `release` command, run once by the
    builder as dyno `release.<number>` (a job: see berth.jobs.queue). The release stays pending
    until it ends; its outcome decides whether the release succeeds."""

    __tablename__ = "release_phases"
    __table_args__ = (UniqueConstraint("app_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), unique=True)
    number: Mapped[int] = mapped_column(Integer)  # N of the dyno name release.N, counting per app
    command: Mapped[str] = mapped_column(String(10000))  # the slug's `release` process type

    @property
    def dyno(self) -> str:
        return f"release.{self.number}"
