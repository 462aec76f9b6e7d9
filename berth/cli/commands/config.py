"""config, config:get, config:set, config:unset."""

from __future__ import annotations

from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, seg
from berth.cli.output import json_option
from berth.cli.session import connect


def _path(app: str) -> str:
    return f"/apps/{seg(app)}/config-vars"


def _pairs(args: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{arg!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        pairs[key] = value
    return pairs


def _report(client: ApiClient, verb: str, keys: list[str], app: str) -> None:
    release = client.newest_release(app)  # the server releases before answering the PATCH
    output.done(f"{verb} {', '.join(keys)} and restarting {app}",
                f"done, v{release['version']}" if release else "done")


@click.command("config")
@app_option
@json_option
def show(app: str | None, as_json: bool) -> None:
    """Show all config vars."""
    name = appname.resolve(app)
    config: dict[str, Any] = connect().get(_path(name)) or {}
    if as_json:
        output.print_json(config)
    elif not config:
        click.echo(f"{name} has no config vars.")
    else:
        output.heading(f"{name} Config Vars")
        output.fields(sorted(config.items()))


@click.command("config:get")
@click.argument("key")
@app_option
@json_option
def get(key: str, app: str | None, as_json: bool) -> None:
    """Print one config var's value (nothing if unset)."""
    value = (connect().get(_path(appname.resolve(app))) or {}).get(key)
    if as_json:
        output.print_json(value)
    elif value is not None:
        click.echo(value)


@click.command("config:set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@app_option
@json_option
def set_(assignments: tuple[str, ...], app: str | None, as_json: bool) -> None:
    """Set config vars and restart the app."""
    pairs = _pairs(assignments)
    name = appname.resolve(app)
    client = connect()
    config = client.patch(_path(name), pairs)
    if as_json:
        output.print_json(config)
        return
    _report(client, "Setting", list(pairs), name)
    output.fields(pairs.items())


@click.command("config:unset")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@app_option
@json_option
def unset(keys: tuple[str, ...], app: str | None, as_json: bool) -> None:
    """Remove config vars and restart the app."""
    name = appname.resolve(app)
    client = connect()
    keys = tuple(dict.fromkeys(keys))  # drop duplicates, keep order
    config = client.patch(_path(name), {k: None for k in keys})
    if as_json:
        output.print_json(config)
    else:
        _report(client, "Unsetting", list(keys), name)


COMMANDS = [show, get, set_, unset]
