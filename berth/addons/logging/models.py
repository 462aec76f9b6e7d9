"""Lines the log store keeps, per resource (one add-on)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from berth.db import Base, utcnow


class StoredLine(Base):
    __tablename__ = "log_store_lines"
    __table_args__ = (Index("ix_log_store_lines_resource_logged", "resource_id", "logged_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_id: Mapped[str] = mapped_column(String(64))
    drain_token: Mapped[str] = mapped_column(String(40))  # which attached app's drain sent it
    logged_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(64))
    process: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
