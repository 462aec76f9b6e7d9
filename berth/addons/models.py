"""What the first-party providers hold: one row per resource, whatever the service.

A provider writes the row (names, generated secrets, where it is placed) and commits *before* it
creates anything on a backend, so a crash in between leaves a record to finish or to clean up,
never a database, instance or topic nobody knows about.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from berth.db import Base, EncryptedText, utcnow

CREATING, ACTIVE, DELETING, DELETED = "creating", "active", "deleting", "deleted"


class ProviderResource(Base):
    __tablename__ = "provider_resources"
    __table_args__ = (Index("ix_provider_resources_service_location", "service", "location"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the add-on's uuid at Berth
    service: Mapped[str] = mapped_column(String(32))               # postgresql | redis | kafka | logs
    plan: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=CREATING)
    location: Mapped[str] = mapped_column(String(255))  # which backend server holds it (no secrets)
    # JSON: names, credentials, ports, limits; encrypted because it holds passwords and keys.
    details: Mapped[str] = mapped_column(EncryptedText, default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
