"""What the web pages keep: signed-in browser sessions and failed sign-in counts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from berth.db import Base, utcnow


class WebSession(Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is kept, so the
    table leaks no usable session, and signing out deletes the row (the cookie dies with it)."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed sign-ins per key (an email address, or a client address) in the current window."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of "email:…" / "ip:…"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
