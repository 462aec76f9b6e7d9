"""Installation secrets: 32 random bytes per name that every process of an installation derives
keys from (the web's session signing key, the first-party providers' passwords and SSO salts).

On SQLite (one machine) each is a file in the data dir (`<name>.key`, mode 0600), as it always was.
On PostgreSQL, which several nodes may share, each is a row of `installation_secrets`, encrypted
with BERTH_SECRET_KEYS (so `admin rotate-keys` re-encrypts it) and made by whichever process of any
node asks first; a file an earlier Berth made seeds the row, so upgrading keeps sessions and
passwords. Each process reads it once.
"""
from __future__ import annotations

import base64
import functools
import secrets
from pathlib import Path

from sqlalchemy import String, create_engine, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import NullPool

from berth import crypto
from berth.config import Settings
from berth.db import Base, EncryptedText


class InstallationSecret(Base):
    __tablename__ = "installation_secrets"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[str] = mapped_column(EncryptedText())  # base64 of the bytes


def installation_secret(settings: Settings, name: str) -> bytes:
    seed = settings.data_dir / f"{name}.key"
    if settings.database_url.startswith("sqlite"):
        return crypto.installation_secret(seed)
    return _shared(settings.database_url, name, seed)


@functools.lru_cache(maxsize=None)
def _shared(database_url: str, name: str, seed: Path) -> bytes:
    made = seed.read_bytes() if seed.is_file() else secrets.token_bytes(32)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(insert(InstallationSecret).values(name=name, value=base64.b64encode(made).decode())
                               .on_conflict_do_nothing(index_elements=["name"]))
            value = connection.scalar(select(InstallationSecret.value).where(InstallationSecret.name == name))
    finally:
        engine.dispose()
    return base64.b64decode(value)
