"""Logical backups of a Postgres add-on (Heroku's PGBackups): `pg_dump --format=custom` of the
tenant's database into the data dir, restored with `pg_restore`, fetched through a signed,
expiring URL. Both tools run as the tenant's own role (never as the server's admin), with the
password in the environment, not on a command line other users can read."""
from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from berth.addons.postgres.cluster import find_postgres_bindir
from berth.addons.secrets import derived_secret
from berth.broker.partner_api.provider import ProviderError
from berth.config import Settings

KEEP = 5                      # Heroku keeps 5 manual backups on essential plans
URL_SECONDS = 600             # how long a download URL works
TIMEOUT_SECONDS = 600
BACKUP_ID = re.compile(r"^b\d{3,}$")


def directory(settings: Settings, uuid: str) -> Path:
    return settings.data_dir / "backends" / "postgres-backups" / uuid


def _index(settings: Settings, uuid: str) -> list[dict[str, Any]]:
    path = directory(settings, uuid) / "index.json"
    return json.loads(path.read_text()) if path.exists() else []


def _save_index(settings: Settings, uuid: str, entries: list[dict[str, Any]]) -> None:
    path = directory(settings, uuid) / "index.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(entries, indent=1))
    os.replace(temporary, path)


def _tenant_env(details: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    args = [f"--host={details['host']}", f"--port={details['port']}", f"--username={details['user']}",
            f"--dbname={details['database']}"]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")},
           "PGPASSWORD": str(details["password"]), "PGCONNECT_TIMEOUT": "10"}
    return args, env


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProviderError(f"The {what} took longer than {TIMEOUT_SECONDS // 60} minutes and was stopped.",
                            503) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ProviderError(f"The {what} failed: {last[:300]}", 422)


def capture(settings: Settings, uuid: str, details: dict[str, Any]) -> dict[str, Any]:
    folder = directory(settings, uuid)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    entries = _index(settings, uuid)
    number = max((int(entry["id"][1:]) for entry in entries), default=0) + 1
    backup_id = f"b{number:03d}"
    path = folder / f"{backup_id}.dump"
    args, env = _tenant_env(details)
    _run([str(find_postgres_bindir() / "pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
          f"--file={path}", *args], env, "backup")
    os.chmod(path, 0o600)
    entry = {"id": backup_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "size_bytes": path.stat().st_size, "status": "completed"}
    entries.append(entry)
    for old in entries[:-KEEP]:
        (folder / f"{old['id']}.dump").unlink(missing_ok=True)
    _save_index(settings, uuid, entries[-KEEP:])
    return entry


def listing(settings: Settings, uuid: str) -> list[dict[str, Any]]:
    return _index(settings, uuid)


def _file(settings: Settings, uuid: str, backup_id: str) -> Path:
    if not BACKUP_ID.match(backup_id) or not any(e["id"] == backup_id for e in _index(settings, uuid)):
        raise ProviderError(f"No backup {backup_id!r}; `pg:backups` lists them.", 422)
    return directory(settings, uuid) / f"{backup_id}.dump"


def restore(settings: Settings, uuid: str, details: dict[str, Any], backup_id: str) -> None:
    path = _file(settings, uuid, backup_id)
    args, env = _tenant_env(details)
    _run([str(find_postgres_bindir() / "pg_restore"), "--clean", "--if-exists", "--no-owner",
          "--no-privileges", "--single-transaction", "--exit-on-error", *args, str(path)], env, "restore")


def _signer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(derived_secret(settings, "postgres-backups"), salt="download")


def download_url(settings: Settings, uuid: str, backup_id: str) -> str:
    _file(settings, uuid, backup_id)
    token = _signer(settings).dumps([uuid, backup_id])
    return f"{settings.api_url}/providers/postgresql/backups/{token}"


def file_for_token(settings: Settings, token: str) -> Path | None:
    """The dump a download URL names, if the URL is genuine and fresh."""
    try:
        uuid, backup_id = _signer(settings).loads(token, max_age=URL_SECONDS)
        path = _file(settings, str(uuid), str(backup_id))
    except (BadSignature, ValueError, ProviderError):
        return None
    return path if path.exists() else None


def delete_all(settings: Settings, uuid: str) -> None:
    folder = directory(settings, uuid)
    if folder.exists():
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
