"""The catalogue: add-on services and their plans, as partners' manifests describe them."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from berth.accounts import Account
from berth.db import Base, EncryptedText, new_id, utcnow
from berth.jobs.queue import JobRecord
from berth.platform.models import App


class AddonService(Base):
    __tablename__ = "addon_services"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # the manifest id (slug)
    human_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(5000), default="")
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="ga")
    cli_plugin_name: Mapped[str | None]
    config_vars_prefix: Mapped[str] = mapped_column(String(100))
    config_vars: Mapped[list[str]] = mapped_column(JSON, default=list)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    requires: Mapped[list[str]] = mapped_column(JSON, default=list)
    base_url: Mapped[str] = mapped_column(String(2000))
    sso_url: Mapped[str | None] = mapped_column(String(2000))
    test_endpoints: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Berth -> partner Basic-auth secret and the SSO token salt: secrets, encrypted at rest.
    password: Mapped[str] = mapped_column(EncryptedText)
    sso_salt: Mapped[str | None] = mapped_column(EncryptedText)
    # For the partner's OAuth exchanges; set on every registration (nullable for older rows).
    client_secret: Mapped[str | None] = mapped_column(EncryptedText)
    manifest_base: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Account | None] = relationship(lazy="joined")
    # Loaded when used: eager loading made every add-on or operation read fetch the
    # service's whole plan list too (a third of the worker's time per provision).
    plans: Mapped[list["Plan"]] = relationship(back_populates="service", cascade="all, delete-orphan",
                                               order_by="Plan.cents, Plan.name")

    @property
    def default_plan(self) -> "Plan | None":
        return next((plan for plan in self.plans if plan.is_default), None)


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(ForeignKey("addon_services.id", ondelete="CASCADE"),
                                            index=True)
    name: Mapped[str] = mapped_column(String(100))  # the slug; the API name is "service:slug"
    human_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    cents: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16), default="month")
    contract: Mapped[bool] = mapped_column(Boolean, default=False)
    metered: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="public")
    features: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    service: Mapped[AddonService] = relationship(back_populates="plans", lazy="joined")

    @property
    def full_name(self) -> str:
        return f"{self.service.name}:{self.name}"


class AddOnState(StrEnum):
    """An add-on's life: provisioning -> provisioned -> deprovisioning -> deprovisioned, or failed
    (the provider refused, or never finished). Stored as the plain string."""

    PROVISIONING = "provisioning"
    PROVISIONED = "provisioned"
    DEPROVISIONING = "deprovisioning"
    DEPROVISIONED = "deprovisioned"
    FAILED = "failed"


class AddOn(Base):
    """One provisioned (or provisioning) resource of a service; its id is the partner's uuid."""

    __tablename__ = "addons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("addon_services.id"), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    # The owning (billing) app; emptied when the app is destroyed while deprovisioning goes on.
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # an AddOnState
    provider_id: Mapped[str | None] = mapped_column(String(255))
    provision_message: Mapped[str | None] = mapped_column(String(1000))
    failure_message: Mapped[str | None] = mapped_column(String(1000))
    options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    region: Mapped[str] = mapped_column(String(64))
    # The provider's config (full manifest names), a JSON object, encrypted as one value.
    config: Mapped[str] = mapped_column(EncryptedText, default="{}")
    deadline_at: Mapped[datetime | None]  # async provisioning must finish by then
    # `syslog_drain` services: the token sent on provision (the first attachment's drain),
    # and the URL the provider answered with (may carry credentials).
    log_drain_token: Mapped[str | None] = mapped_column(String(40))
    log_drain_url: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    service: Mapped[AddonService] = relationship(lazy="joined")
    plan: Mapped[Plan] = relationship(lazy="joined")
    app: Mapped[App | None] = relationship(lazy="joined")
    attachments: Mapped[list["Attachment"]] = relationship(
        back_populates="addon", cascade="all, delete-orphan", order_by="Attachment.created_at")


class Attachment(Base):
    """An add-on's presence in one app: its name prefixes the add-on's config vars there."""

    __tablename__ = "addon_attachments"
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    addon_id: Mapped[str] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    namespace: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    addon: Mapped[AddOn] = relationship(back_populates="attachments", lazy="joined")
    app: Mapped[App] = relationship(lazy="joined")


class Operation(JobRecord, Base):
    """A recorded call to a provider: written with the change that needs it, run by a worker (a job
    of `berth.jobs`: state, attempts, lease and outcome come with JobRecord)."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    addon_id: Mapped[str] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))    # provision | change_plan | deprovision
    target_plan_id: Mapped[str | None] = mapped_column(String(36))

    addon: Mapped[AddOn] = relationship(lazy="joined")


class PartnerAuthorization(Base):
    """The partner's access to one add-on: a grant code, then access and refresh tokens.

    Only SHA-256 digests are stored. The tokens reach nothing but this add-on (and the apps
    it is attached to), and die with it.
    """

    __tablename__ = "partner_authorizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    addon_id: Mapped[str] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"), unique=True)
    grant_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    grant_expires_at: Mapped[datetime | None]
    access_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[datetime | None]
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    addon: Mapped[AddOn] = relationship(lazy="joined")
