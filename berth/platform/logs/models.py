"""Log lines, drains, input tokens and log sessions."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from berth.db import Base, EncryptedText, new_id, utcnow


class LogLine(Base):
    """One line of an app's stream. Ids only grow, so a tailing reader asks for `id > last`."""

    __tablename__ = "log_lines"
    __table_args__ = (Index("ix_log_lines_app_id_id", "app_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    logged_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(64))   # app | heroku | an add-on's name
    process: Mapped[str] = mapped_column(String(64))  # web.1 | router | api | ...
    message: Mapped[str] = mapped_column(Text)


class LogDrain(Base):
    """A URL that receives a copy of the app's stream. Add-on drains (`owner` set) go only with
    the add-on that made them; the platform keeps the owner opaque, as with config vars."""

    __tablename__ = "log_drains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(EncryptedText)  # may carry credentials (https://user:pass@…)
    token: Mapped[str] = mapped_column(String(40), unique=True)  # d.<uuid>
    owner: Mapped[str | None] = mapped_column(String(100), index=True)
    # The last line delivered (or given up on): a drain gets the lines logged after it was added.
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LogInputToken(Base):
    """A credential to write into one app's stream (`log_input_url`), as `source`."""

    __tablename__ = "log_input_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(EncryptedText)                  # t.<uuid>, shown in URLs
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # looked up on every POST
    source: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LogSession(Base):
    """A `logplex_url` handed out by `POST /apps/{app}/log-sessions`, readable until it expires."""

    __tablename__ = "log_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    lines: Mapped[int] = mapped_column(Integer, default=100)
    tail: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(String(64))
    dyno: Mapped[str | None] = mapped_column(String(64))  # a process (web.1) or a type (web)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
