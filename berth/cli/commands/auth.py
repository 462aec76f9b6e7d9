"""login, logout, auth:token, auth:whoami."""

from __future__ import annotations

import os
import socket
from typing import Any

import click

from berth.cli import credentials, output
from berth.cli.client import ApiClient, api_host, api_url, basic_auth, seg
from berth.cli.errors import ApiError
from berth.cli.output import json_option
from berth.cli.session import connect

LOGIN_TTL = 2592000  # 30 days, the Heroku CLI's login token lifetime


@click.command("login")
@click.option("--email", help="Account email (prompted if omitted).")
@click.option("--password", help="Account password (prompted if omitted).")
@json_option
def login(email: str | None, password: str | None, as_json: bool) -> None:
    """Log in with email and password; stores a new API token in netrc."""
    if os.environ.get("BERTH_API_KEY"):
        output.warn("BERTH_API_KEY is set and overrides the stored login.")
    email = email or click.prompt("Email")
    password = password or click.prompt("Password", hide_input=True)
    url = api_url()
    answer = ApiClient(url).post(
        "/oauth/authorizations",
        {"description": f"Berth CLI login from {socket.gethostname()}",
         "scope": ["global"], "expires_in": LOGIN_TTL},
        headers={"Authorization": basic_auth(email, password)})
    try:
        token, who = answer["access_token"]["token"], answer["user"]["email"]
    except (KeyError, TypeError):
        raise ApiError("the server's authorization answer has no access_token.token or user.email") from None
    credentials.save(api_host(url), who, token)
    if as_json:
        output.print_json(answer)
    else:
        click.echo(f"Logged in as {who}")


def _is_ours(authz: dict[str, Any], token: str) -> str:
    """'exact' / 'suffix' / '' — the server shows tokens only redacted (`****abcd`) after creation."""
    if authz.get("default"):  # never revoke the account's default API key
        return ""
    shown = str((authz.get("access_token") or {}).get("token") or "")
    if shown == token:
        return "exact"
    tail = shown.lstrip("*")
    return "suffix" if shown.startswith("*") and tail and token.endswith(tail) else ""


@click.command("logout")
@json_option
def logout(as_json: bool) -> None:
    """Revoke the stored login token and remove it from netrc."""
    url = api_url()
    host = api_host(url)
    stored = credentials.read(host)
    revoked: list[Any] = []
    if stored:
        client = ApiClient(url, stored[1])
        try:
            authzs = client.get("/oauth/authorizations") or []
            exact = [a for a in authzs if _is_ours(a, stored[1]) == "exact"]
            suffix = [a for a in authzs if _is_ours(a, stored[1]) == "suffix"]
            # A 4-character suffix can collide: revoke on it only when unambiguous.
            for authz in exact or (suffix if len(suffix) == 1 else []):
                revoked.append(client.delete(f"/oauth/authorizations/{seg(authz['id'])}"))
        except ApiError as exc:
            if exc.status != 401:  # 401: token already revoked or expired, nothing to do
                raise
        credentials.remove(host)
    if as_json:
        output.print_json(revoked)
    else:
        click.echo("Logged out")


@click.command("auth:token")
@json_option
def token(as_json: bool) -> None:
    """Print the API key in use."""
    key = credentials.api_key(api_host(api_url()))
    if as_json:
        output.print_json({"token": key})
    else:
        click.echo(key)


@click.command("auth:whoami")
@json_option
def whoami(as_json: bool) -> None:
    """Print the email of the logged-in account."""
    account = connect().get("/account")
    if as_json:
        output.print_json(account)
    else:
        click.echo(output.text(account.get("email")))


COMMANDS = [login, logout, token, whoami]
