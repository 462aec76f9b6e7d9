"""Encryption of secrets at rest (MultiFernet, newest key first) and hashing of API keys.

The keyring is process-wide: SQLAlchemy column types (``EncryptedText``) have no request
context, and every process of one installation uses the same keys.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "secret.keys"
DECRYPT_CACHE_SIZE = 4096


class KeyringError(RuntimeError):
    pass


class Keyring:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise KeyringError("at least one Fernet key is required")
        try:
            self._fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
        except (ValueError, TypeError) as exc:
            raise KeyringError("BERTH_SECRET_KEYS holds a value that is not a Fernet key") from exc
        self._multi = MultiFernet(self._fernets)
        self._keys = [k.encode() if isinstance(k, str) else k for k in keys]
        # A Fernet token always decrypts to the same plaintext (each encryption draws a new
        # IV, so equal values never share a token): remembering recent ones spares the HMAC
        # and AES on hot reads. Plaintexts pass through this process's memory anyway.
        self._decrypt_cached = functools.lru_cache(maxsize=DECRYPT_CACHE_SIZE)(self._decrypt)

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._decrypt_cached(token)

    def _decrypt(self, token: str) -> str:
        try:
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise KeyringError("a secret could not be decrypted with any configured key") from exc

    def derived_keys(self, purpose: str) -> list[bytes]:
        """Signing keys for `purpose`, one per configured key, newest first: sign with the first,
        accept any (so rotating BERTH_SECRET_KEYS keeps what was signed before valid)."""
        return [hmac.new(key, purpose.encode(), hashlib.sha256).digest() for key in self._keys]

    def rotate(self, token: str) -> str:
        """Re-encrypt under the newest key (MultiFernet.rotate keeps the original timestamp)."""
        return self._multi.rotate(token.encode()).decode()


_keyring: Keyring | None = None


def configure(keys: list[str]) -> Keyring:
    global _keyring
    _keyring = Keyring(keys)
    return _keyring


def keyring() -> Keyring:
    if _keyring is None:
        raise KeyringError("crypto.configure() has not been called")
    return _keyring


def load_or_create_keys(configured: tuple[str, ...], data_dir: Path) -> list[str]:
    """Configured keys win; otherwise one key is generated once into the data dir (mode 0600)."""
    if configured:
        return list(configured)
    path = data_dir / KEY_FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write a complete file aside, then link it into place: link fails if another
        # process won the race, and nobody ever reads a half-written key file.
        fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".secret-")
        try:
            with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
                handle.write(Fernet.generate_key().decode() + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    keys = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not keys:
        raise KeyringError(f"{path} is empty")
    return keys


def new_token(prefix: str = "HRKU-") -> str:
    """A high-entropy opaque API key (256 bits)."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Fast hash for high-entropy tokens: brute force is hopeless, so no slow KDF is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def installation_secret(path: Path) -> bytes:
    """32 random bytes kept in `path` (mode 0600), made by whichever process comes first, so every
    process of one installation derives the same keys from it (session signing, partner secrets).
    Written aside and linked into place: a reader never sees a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first: theirs stands
        finally:
            os.unlink(aside)
    return path.read_bytes()
