"""The catalogue: add-on services and their plans, as partners' manifests describe them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from berth.accounts import Account
from berth.db import Base, EncryptedText, new_id, utcnow


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
    manifest_base: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[Account | None] = relationship(lazy="joined")
    plans: Mapped[list["Plan"]] = relationship(back_populates="service", cascade="all, delete-orphan",
                                               order_by="Plan.cents, Plan.name", lazy="selectin")

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
