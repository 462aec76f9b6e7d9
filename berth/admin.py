"""Operator commands: `python -m berth.admin create-user EMAIL [--password P]`, `rotate-keys`."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping, TextIO

import click
from sqlalchemy import column as sql_column
from sqlalchemy import select, update
from sqlalchemy import table as sql_table
from sqlalchemy.orm import Session

from berth import crypto
from berth.accounts import create_account, find_account_by_email
from berth.broker.catalogue import register_manifest
from berth.broker.partner_api.manifest import HEROKU_REGIONS
from berth.config import Settings, load_settings
from berth.db import Base, Database, EncryptedText
from berth.errors import BerthError
from berth.outbound import TargetPolicy

DATABASE_FILE = "berth.sqlite3"
PROJECT_DATA_DIR = Path(__file__).resolve().parents[1] / "var"  # where `make run` keeps its data


def find_data_dir(start: Path, project_data_dir: Path = PROJECT_DATA_DIR) -> Path | None:
    """The data dir of an embedded (SQLite) Berth: `var/` in `start` or a directory above it,
    else the project's own `var/`, whichever first holds a database; None when none does."""
    for directory in (start, *start.parents):
        if (directory / "var" / DATABASE_FILE).is_file():
            return directory / "var"
    return project_data_dir if (project_data_dir / DATABASE_FILE).is_file() else None


def _settings(env: Mapping[str, str]) -> Settings:
    """The server's settings; with neither BERTH_DATA_DIR nor BERTH_DATABASE_URL set, the data dir
    of the Berth this directory belongs to, so a key made from elsewhere works on that server."""
    if env.get("BERTH_DATA_DIR") or env.get("BERTH_DATABASE_URL"):
        return load_settings(env)
    found = find_data_dir(Path.cwd())
    if found is not None and found != Path("var").resolve():
        click.echo(f"Using the data dir {found} (set BERTH_DATA_DIR to choose another).", err=True)
    return load_settings({**env, "BERTH_DATA_DIR": str(found)} if found else env)


def _where(settings: Settings) -> str:
    """The database, as an operator recognises it (no password)."""
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _open_database() -> tuple[Settings, Database]:
    try:
        settings = _settings(os.environ)
        crypto.configure(crypto.load_or_create_keys(settings.secret_keys, settings.data_dir))
    except (ValueError, crypto.KeyringError) as error:
        raise click.ClickException(str(error)) from None
    database = Database(settings.database_url)
    if database.migrate(settings.data_dir) is None:
        click.echo(f"There was no Berth database at {_where(settings)}: this made a new one. If your "
                   "server keeps its data elsewhere, run this again with BERTH_DATA_DIR (or "
                   "BERTH_DATABASE_URL) set as the server has it.", err=True)
    click.echo(f"Database: {_where(settings)}", err=True)
    return settings, database


@click.group()
def main() -> None:
    """Berth operator commands (run on the server, next to the data dir)."""


@main.command("create-user")
@click.argument("email")
@click.option("--password", help="Password for `berth login` / `heroku login -i`; prompted if omitted "
              "on a terminal, none when not interactive.")
@click.option("--name", help="Display name.")
def create_user(email: str, password: str | None, name: str | None) -> None:
    """Create an account and print its API key (shown once) on standard output."""
    if password is None and sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True) or None
    _, database = _open_database()
    try:
        with database.transaction() as session:
            account, key = create_account(session, email, password, name)
    except BerthError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Created {account.email}. Its API key follows; it will not be shown again.", err=True)
    click.echo(key.clear_token)


@main.command("register-addon")
@click.argument("manifest_file", type=click.File("r"))
@click.option("--owner", help="Email of the partner account that may update it afterwards.")
def register_addon(manifest_file: TextIO, owner: str | None) -> None:
    """Add or replace an add-on service in the catalogue from a manifest file (JSON)."""
    try:
        document = json.load(manifest_file)
    except ValueError as error:
        raise click.ClickException(f"{manifest_file.name} is not valid JSON: {error}") from None
    settings, database = _open_database()
    try:
        with database.transaction() as session:
            account = find_account_by_email(session, owner) if owner else None
            if owner and account is None:
                raise click.ClickException(f"No account with the email {owner}.")
            service = register_manifest(session, document, owner=None,
                                        known_regions=HEROKU_REGIONS | {settings.region},
                                        targets=TargetPolicy.from_settings(settings))
            if account is not None:
                service.owner_id = account.id
            plans = ", ".join(plan.name for plan in service.plans)
            click.echo(f"Registered {service.name} with plans {plans}.", err=True)
    except BerthError as error:
        raise click.ClickException(error.message) from None


@main.command("create-osb-client")
@click.argument("email")
@click.option("--lenient-org-space", is_flag=True,
              help="Accept provisions without organization_guid/space_guid (Kubernetes-style platforms).")
def create_osb_client(email: str, lenient_org_space: bool) -> None:
    """Make an Open Service Broker credential for a platform, owned by the account EMAIL: prints
    USERNAME:PASSWORD (the password is not shown again)."""
    from berth.broker.osb import clients

    _, database = _open_database()
    try:
        with database.transaction() as session:
            made = clients.create_client(session, email, lenient_org_space=lenient_org_space)
    except BerthError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Created an OSB client for {email}; register the broker at <berth>/osb with it. "
               "The password will not be shown again.", err=True)
    click.echo(f"{made.username}:{made.password}")


@main.command("list-osb-clients")
def list_osb_clients() -> None:
    """The platforms' OSB credentials (usernames and owners; never passwords)."""
    from berth.broker.osb import clients

    _, database = _open_database()
    with database.session(write=False) as session:
        for client in clients.list_clients(session):
            lenient = " lenient-org-space" if client.lenient_org_space else ""
            click.echo(f"{client.username}\t{client.owner.email}\t{client.created_at:%Y-%m-%dT%H:%M:%SZ}{lenient}")


@main.command("revoke-osb-client")
@click.argument("username")
def revoke_osb_client(username: str) -> None:
    """Stop a platform's OSB credential at once; its instances stay with the owner's account."""
    from berth.broker.osb import clients

    _, database = _open_database()
    try:
        with database.transaction() as session:
            clients.revoke_client(session, username)
    except BerthError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Revoked {username}.", err=True)


def rotate_all(session: Session) -> int:
    """Re-encrypt every EncryptedText column of every table under the newest key.

    Works on raw ciphertext through an untyped view of each table, so no value is
    decrypted into a model object and the column type does not encrypt twice.
    """
    ring, rotated_rows = crypto.keyring(), 0
    for table in Base.metadata.sorted_tables:
        secret_names = [c.name for c in table.columns if isinstance(c.type, EncryptedText)]
        if not secret_names:
            continue
        key_names = [c.name for c in table.primary_key.columns]
        raw = sql_table(table.name, *[sql_column(name) for name in key_names + secret_names])
        for row in session.execute(select(raw)).mappings().all():
            values = {name: ring.rotate(row[name]) for name in secret_names if row[name] is not None}
            if values:
                session.execute(update(raw).where(*[raw.c[k] == row[k] for k in key_names])
                                .values(values))
                rotated_rows += 1
    return rotated_rows


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt all secrets under the newest key of BERTH_SECRET_KEYS (list it first)."""
    _, database = _open_database()
    with database.transaction() as session:
        count = rotate_all(session)
    click.echo(f"Re-encrypted secrets in {count} rows under the newest key.", err=True)


if __name__ == "__main__":
    main()
