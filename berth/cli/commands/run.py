"""run, run:detached: one-off dynos (`run.N`) from the app's current release."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from typing import Any

import click

from berth.cli import appname, rendezvous
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, seg
from berth.cli.errors import CliError
from berth.cli.session import connect


def _command(args: tuple[str, ...]) -> str:
    if not args:
        raise click.UsageError("Give the command to run, e.g. berth run -- python manage.py migrate")
    return args[0] if len(args) == 1 else shlex.join(args)  # one argument: as typed, like `heroku run`


def _env(spec: str | None) -> dict[str, str]:
    """`--env "A=1;B=2"`, Heroku's syntax."""
    env: dict[str, str] = {}
    for part in (spec or "").split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{part.strip()!r} is not NAME=value (separate several with ';')",
                                     param_hint="--env")
        env[name.strip()] = value
    return env


def _create(client: ApiClient, app: str, body: dict[str, Any]) -> dict[str, Any]:
    return client.post(f"/apps/{seg(app)}/dynos", {k: v for k, v in body.items() if v is not None})


def _ca_pem(client: ApiClient) -> str:
    """Berth's CA: BERTH_CA_FILE, or the server's own answer at GET /ca.pem (trusted as far as this
    API connection is)."""
    path = os.environ.get("BERTH_CA_FILE")
    if path:
        try:
            with open(path, encoding="ascii") as handle:
                return handle.read()
        except OSError as exc:
            raise CliError(f"cannot read BERTH_CA_FILE {path}: {exc.strerror}") from None
    return client.request("GET", "/ca.pem").text


run_options = [
    click.option("-e", "--env", "env_spec", metavar="'A=1;B=2'", help="Environment variables for this run."),
    click.option("-s", "--size", metavar="SIZE", help="Dyno size (standard-1x, standard-2x, performance-m...)."),
    app_option,
]


def _with_options(function: Any) -> Any:
    for option in reversed(run_options):
        function = option(function)
    return function


@click.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--no-tty", is_flag=True, help="Do not use a terminal even when there is one.")
@_with_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(no_tty: bool, env_spec: str | None, size: str | None, app: str | None, command: tuple[str, ...]) -> None:
    """Run a command in a one-off dyno, attached to this terminal; exits with its status."""
    name = appname.resolve(app)
    text = _command(command)
    client = connect()
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    env = {"TERM": os.environ.get("TERM", "dumb"), **_env(env_spec)}
    if tty:
        columns, lines = shutil.get_terminal_size()
        env |= {"COLUMNS": str(columns), "LINES": str(lines)}
    ca_pem = _ca_pem(client)
    dyno = _create(client, name, {"command": text + rendezvous.EXIT_STATUS_REQUEST, "attach": True, "env": env,
                                  "size": size, "force_no_tty": no_tty or None})
    if not dyno.get("attach_url"):
        raise CliError(f"the server started {dyno.get('name', 'the dyno')} without an attach URL")
    if tty:
        click.echo(f"Running {text} on {name}... up, {dyno['name']}", err=True)
    status = rendezvous.attach(str(dyno["attach_url"]), ca_pem, tty=tty)
    if status is None:
        raise CliError(f"{dyno['name']} ended without reporting its exit status (the connection was lost?)")
    sys.exit(status)


@click.command("run:detached")
@_with_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run_detached(env_spec: str | None, size: str | None, app: str | None, command: tuple[str, ...]) -> None:
    """Run a command in a one-off dyno in the background; its output goes to the app's log."""
    name = appname.resolve(app)
    dyno = _create(connect(), name, {"command": _command(command), "attach": False, "env": _env(env_spec),
                                     "size": size})
    click.echo(dyno["name"])
    click.echo(f"Run berth logs -a {name} --dyno {dyno['name']} to see its output.", err=True)


COMMANDS = [run, run_detached]
