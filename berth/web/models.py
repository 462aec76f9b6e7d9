"""What the web pages keep: signed-in browser sessions (failed sign-in counts are in berth.accounts)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
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

