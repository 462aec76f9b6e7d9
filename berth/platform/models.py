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


class Domain(Base):
    """A custom domain the router serves for an app. The default `<app>.<apps domain>` domain is
    not stored: it follows the app's name."""

    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    app: Mapped[App] = relationship(lazy="joined")


class Formation(Base):
    """How many dynos of each process type an app wants, and their size: what app.json's `formation`
    stored; the run core scales to it."""

    __tablename__ = "formations"
    __table_args__ = (UniqueConstraint("app_id", "type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(63))
    quantity: Mapped[int] = mapped_column(Integer)
    size: Mapped[str | None] = mapped_column(String(32))  # None: the default size
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AppSetup(JobRecord, Base):
    """An app.json applied to an app: made by POST /app-setups (kind `setup`, a new app) or by an
    app's first deploy whose source has an app.json (kind `deploy`). A job (berth.jobs.queue) that
    comes due when its build finishes: then it runs the postdeploy script, or undoes what the
    manifest applied when the build failed. It outlives its app (a failed setup destroys the app
    it made), hence no foreign keys to the app and the build."""

    __tablename__ = "app_setups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[str] = mapped_column(String(36), index=True)
    app_name: Mapped[str] = mapped_column(String(30))
    build_id: Mapped[str | None] = mapped_column(String(36), index=True)
    build_status: Mapped[str | None] = mapped_column(String(16))  # the build's, once finished
    stage: Mapped[str] = mapped_column(String(16))  # an app_setups.records.Stage
    # {"env": {...}, "buildpacks": [...]} of POST /app-setups, encrypted as one value (env holds secrets)
    overrides: Mapped[str | None] = mapped_column(EncryptedText)
    manifest_errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # What the manifest changed on the app, to undo if the deploy fails: config var names, add-on
    # ids, the buildpacks before, formation types.
    applied: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    postdeploy_command: Mapped[str | None] = mapped_column(String(4000))
    postdeploy_output: Mapped[str | None] = mapped_column(EncryptedText)
    postdeploy_exit_code: Mapped[int | None] = mapped_column(Integer)
    success_url: Mapped[str | None] = mapped_column(String(2000))


class OneOffDyno(Base):
    """A one-off dyno (`heroku run`, `run.N`): one command from its release's slug, never restarted.
    `secret_digest` is the SHA-256 of its attach secret (never the secret): the rendezvous host claims
    the row with it once. `env` holds what the client added over the release's config."""

    __tablename__ = "one_off_dynos"
    __table_args__ = (UniqueConstraint("app_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(63))
    command: Mapped[str] = mapped_column(String(10000))
    env: Mapped[str] = mapped_column(EncryptedText)  # JSON object
    size: Mapped[str] = mapped_column(String(32))
    attach: Mapped[bool] = mapped_column(Boolean)
    tty: Mapped[bool] = mapped_column(Boolean)
    time_to_live: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="starting")  # starting|up|down|crashed
    secret_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    ended_because: Mapped[str | None] = mapped_column(String(255))
    # The node whose rendezvous host claimed it (BERTH_NODE_NAME, or the host name): only that host
    # runs it, and only that host's restart ends it.
    host: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    release: Mapped[Release] = relationship(lazy="joined")

    @property
    def name(self) -> str:
        return f"{self.type}.{self.number}"


class Dyno(Base):
    """A formation dyno (`web.1`) as the runner last saw it: the runner alone writes these rows, one
    per dyno its backend runs (a restart is a new row: a new id, as on Heroku). During a rolling
    deploy the old and the new `web.1` both have a row, of different releases. `backend_id` is the
    backend's own name for it; `address` (host:port, web dynos) is for the router only, never shown."""

    __tablename__ = "dynos"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[str | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"))
    release_version: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(63))
    number: Mapped[int] = mapped_column(Integer)
    command: Mapped[str] = mapped_column(String(10000))
    size: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="starting")  # starting|up|crashed|down
    exit_status: Mapped[int | None] = mapped_column(Integer)
    backend_id: Mapped[str] = mapped_column(String(255), unique=True)
    address: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # when it was started
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def name(self) -> str:
        return f"{self.type}.{self.number}"


class DynoAction(Base):
    """A user's request to restart or stop dynos, for the runner to carry out (then `done_at` is
    set): every dyno of the app (`type` and `name` empty), one process type, or one dyno by name.
    `restart` replaces the dynos; `stop` stops them (formation dynos are then started again by the
    runner, as Heroku replaces them)."""

    __tablename__ = "dyno_actions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # restart|stop
    type: Mapped[str | None] = mapped_column(String(63))
    name: Mapped[str | None] = mapped_column(String(100))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class RunnerLease(Base):
    """One shard of the apps (berth.platform.runner.ownership): the runner that reconciles its apps,
    until `expires_at` (the control-plane database's clock, UTC). Rows for every shard exist once
    a runner on PostgreSQL started; a free shard has an expired lease."""

    __tablename__ = "runner_leases"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime]


class RunnerNode(Base):
    """A live runner (renewed every round): how many share the shards."""

    __tablename__ = "runner_nodes"

    holder: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime]
