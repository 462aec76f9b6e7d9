"""The Open Service Broker's own records: platform clients, and the platform's ids for add-ons
(an instance IS an add-on) and for the grants it binds to them. State lives on the add-on and its
operations; these rows only remember what the platform asked, so replays can be compared."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from berth.accounts import Account
from berth.broker.models import AddOn
from berth.db import Base, EncryptedText, new_id, utcnow


class OsbClient(Base):
    """One platform (a Cloud Foundry, a Kubernetes cluster) allowed to call the broker; what it
    provisions belongs to `owner`. The password is a random token: stored as its SHA-256."""

    __tablename__ = "osb_clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # Kubernetes-style platforms send `context` instead of organization_guid/space_guid.
    lenient_org_space: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[Account] = relationship(lazy="joined")


class OsbInstance(Base):
    """A platform's service instance: its id for an add-on, and the request that made it."""

    __tablename__ = "osb_instances"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the platform's instance_id
    client_id: Mapped[str | None] = mapped_column(ForeignKey("osb_clients.id", ondelete="SET NULL"), index=True)
    addon_id: Mapped[str] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[str] = mapped_column(String(36))
    plan_id: Mapped[str] = mapped_column(String(36))  # as provisioned; the add-on's plan is the current one
    fingerprint: Mapped[str] = mapped_column(String(64))  # canonical JSON hash of the provision request
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    organization_guid: Mapped[str | None] = mapped_column(String(255))
    space_guid: Mapped[str | None] = mapped_column(String(255))
    maintenance_version: Mapped[str | None] = mapped_column(String(255))
    # The platform's last operation on it: the broker operation's id is the `operation` token.
    operation_kind: Mapped[str] = mapped_column(String(16))  # provision | update | deprovision
    operation_id: Mapped[str | None] = mapped_column(String(36))
    operation_fingerprint: Mapped[str | None] = mapped_column(String(64))  # of the PATCH that runs
    deleted_at: Mapped[datetime | None]  # the tombstone: the platform deleted it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    addon: Mapped[AddOn] = relationship(lazy="joined")


class OsbBinding(Base):
    """A platform's binding: a grant of the instance's credentials (the config vars an attachment
    would inject), kept encrypted so a repeated PUT or GET answers the same."""

    __tablename__ = "osb_bindings"

    instance_id: Mapped[str] = mapped_column(ForeignKey("osb_instances.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the platform's binding_id
    service_id: Mapped[str] = mapped_column(String(36))
    plan_id: Mapped[str] = mapped_column(String(36))
    fingerprint: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    bind_resource: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    credentials: Mapped[str | None] = mapped_column(EncryptedText)  # a JSON object; None once unbound
    syslog_drain_url: Mapped[str | None] = mapped_column(EncryptedText)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
