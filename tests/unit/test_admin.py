"""Operator commands as real subprocesses: create-user, rotate-keys; the generated key file."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from berth import create_app
from berth.crypto import KeyringError
from berth.config import load_settings
from tests.conftest import ACCEPT

REPO = Path(__file__).resolve().parents[2]


def admin(data_dir: Path, *args: str, keys: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BERTH_DATA_DIR": str(data_dir)}
    env.pop("BERTH_SECRET_KEYS", None)
    if keys is not None:
        env["BERTH_SECRET_KEYS"] = keys
    return subprocess.run([sys.executable, "-m", "berth.admin", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_create_user_prints_only_the_key_and_it_works(tmp_path: Path) -> None:
    result = admin(tmp_path, "create-user", "ops@example.com", "--password", "pw-123456789")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("HRKU-") and len(result.stdout.splitlines()) == 1
    assert key not in result.stderr
    key_file = tmp_path / "secret.keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    app = create_app(load_settings({"BERTH_DATA_DIR": str(tmp_path)}))
    response = app.test_client().get("/account", headers={"Authorization": f"Bearer {key}", "Accept": ACCEPT})
    assert response.status_code == 200 and response.get_json()["email"] == "ops@example.com"


def test_create_user_refuses_duplicates_and_bad_emails(tmp_path: Path) -> None:
    assert admin(tmp_path, "create-user", "dup@example.com").returncode == 0
    duplicate = admin(tmp_path, "create-user", "DUP@example.com")
    assert duplicate.returncode != 0 and "already registered" in duplicate.stderr
    bad = admin(tmp_path, "create-user", "not-an-email")
    assert bad.returncode != 0 and "not a valid email" in bad.stderr
    assert duplicate.stdout == bad.stdout == ""


def test_rotate_keys_reencrypts_everything_under_the_newest_key(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    key = admin(tmp_path, "create-user", "rot@example.com", keys=old).stdout.strip()
    settings = load_settings({"BERTH_DATA_DIR": str(tmp_path), "BERTH_SECRET_KEYS": old})
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {key}", "Accept": ACCEPT}
    assert client.post("/apps", json={"name": "rotating"}, headers=headers).status_code == 201
    client.patch("/apps/rotating/config-vars", json={"SECRET": "s3cr3t"}, headers=headers)

    result = admin(tmp_path, "rotate-keys", keys=f"{new},{old}")
    assert result.returncode == 0, result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr

    # With only the new key configured, every secret is still readable.
    client = create_app(settings.with_overrides(secret_keys=(new,))).test_client()
    assert client.get("/apps/rotating/config-vars", headers=headers).get_json() == {"SECRET": "s3cr3t"}
    assert client.get("/apps/rotating/releases/2/config-vars", headers=headers).get_json() == {"SECRET": "s3cr3t"}
    # And the old key alone can no longer read them. (Without the built-in add-ons: registering
    # them reads the catalogue, so with the wrong key the app would not even start.)
    with pytest.raises(KeyringError):
        create_app(settings.with_overrides(secret_keys=(old,)))
    client = create_app(settings.with_overrides(secret_keys=(old,), builtin_addons=False)).test_client()
    assert client.get("/apps/rotating/config-vars", headers=headers).status_code == 500


def test_invalid_secret_keys_fail_clearly(tmp_path: Path) -> None:
    result = admin(tmp_path, "create-user", "x@example.com", keys="not-a-fernet-key")
    assert result.returncode != 0 and "not a Fernet key" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("variable,value", [("BERTH_PORT", "eighty")])
def test_bad_numeric_setting_is_reported(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        load_settings({variable: value})


def _admin_in(cwd: Path, *args: str, checkout: Path) -> subprocess.CompletedProcess[str]:
    """`python -m berth.admin` run from `cwd`, with no BERTH_DATA_DIR or BERTH_DATABASE_URL, from a
    copy of the package in `checkout`: the project's own `var/` (the admin's fallback) is then
    `checkout/var`, not the developer's, whose database `make run` may have filled."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BERTH_DATA_DIR", "BERTH_DATABASE_URL", "BERTH_SECRET_KEYS", "PYTHONPATH")}
    if not (checkout / "berth").is_dir():
        shutil.copytree(REPO / "berth", checkout / "berth", ignore=shutil.ignore_patterns("__pycache__"))
    env["PYTHONPATH"] = str(checkout)
    return subprocess.run([sys.executable, "-m", "berth.admin", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_create_user_from_a_subdirectory_writes_to_the_servers_data_dir(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deeper = project / "apps" / "shop"
    deeper.mkdir(parents=True)
    first = _admin_in(project, "create-user", "first@example.com", checkout=tmp_path / "checkout")
    assert first.returncode == 0, first.stderr
    assert "no Berth database" in first.stderr and str(project / "var" / "berth.sqlite3") in first.stderr

    from_below = _admin_in(deeper, "create-user", "second@example.com", checkout=tmp_path / "checkout")
    assert from_below.returncode == 0, from_below.stderr
    assert f"Using the data dir {project / 'var'}" in from_below.stderr
    assert "no Berth database" not in from_below.stderr
    assert not (deeper / "var").exists()
    key = from_below.stdout.strip()
    app = create_app(load_settings({"BERTH_DATA_DIR": str(project / "var")}))
    response = app.test_client().get("/account", headers={"Authorization": f"Bearer {key}", "Accept": ACCEPT})
    assert response.status_code == 200 and response.get_json()["email"] == "second@example.com"


def test_the_data_dir_is_looked_for_above_then_in_the_project(tmp_path: Path) -> None:
    from berth.admin import find_data_dir

    project_var, elsewhere = tmp_path / "berth" / "var", tmp_path / "home" / "me"
    elsewhere.mkdir(parents=True)
    assert find_data_dir(elsewhere, project_var) is None  # nothing yet: a new one, said so
    project_var.mkdir(parents=True)
    (project_var / "berth.sqlite3").touch()
    assert find_data_dir(elsewhere, project_var) == project_var
    (tmp_path / "home" / "var").mkdir()
    (tmp_path / "home" / "var" / "berth.sqlite3").touch()
    assert find_data_dir(elsewhere, project_var) == tmp_path / "home" / "var"
