"""ps, ps:scale, ps:type (alias ps:resize): an app's formation, as the Heroku CLI shows and changes it."""

from __future__ import annotations

import re
from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, seg
from berth.cli.errors import CliError
from berth.cli.output import json_option
from berth.cli.session import connect

# web=2, worker+1, web-1, web=3:standard-2x (Heroku's ps:scale grammar)
_SCALE = re.compile(r"^([\w-]+)([=+-]\d+)(?::([\w-]+))?$")
_RESIZE = re.compile(r"^([\w-]+)=([\w-]+)$")


def _path(app: str) -> str:
    return f"/apps/{seg(app)}/formation"


def _formation(client: ApiClient, app: str) -> list[dict[str, Any]]:
    formation: list[dict[str, Any]] = client.get(_path(app)) or []
    if not formation:
        raise CliError(f"No process types on {app}. Upload a Procfile to add process types "
                       "(https://devcenter.heroku.com/articles/procfile).")
    return sorted(formation, key=lambda entry: entry["type"])


def _scale_changes(args: tuple[str, ...]) -> list[dict[str, str]]:
    changes = []
    for arg in args:
        match = _SCALE.match(arg)
        if not match:
            raise click.BadParameter(f"{arg!r} is not TYPE=N, TYPE+N or TYPE-N (optionally :SIZE), "
                                     "e.g. web=2 worker+1 web=1:standard-2x", param_hint="TYPE=N")
        kind, amount, size = match.groups()
        change = {"type": kind, "quantity": amount[1:] if amount[0] == "=" else amount}
        if size:
            change["size"] = size.replace("Shield-", "Private-")
        changes.append(change)
    return changes


@click.command("ps")
@app_option
@json_option
def ps(app: str | None, as_json: bool) -> None:
    """Show the app's process types and how many dynos each should run."""
    name = appname.resolve(app)
    formation = _formation(connect(), name)
    if as_json:
        output.print_json(formation)
        return
    for entry in formation:
        output.heading(f"{entry['type']} ({entry['size']}): {entry['command']} ({entry['quantity']})")
    click.echo(f"\nNo dynos on {name} yet: Berth records the formation but does not run dynos yet.")


@click.command("ps:scale")
@click.argument("changes", nargs=-1, metavar="[TYPE=N|TYPE+N|TYPE-N[:SIZE]]...")
@app_option
def scale(changes: tuple[str, ...], app: str | None) -> None:
    """Scale process types: absolute (web=2) or relative (worker+1), optionally resizing (web=1:standard-2x).
    Without arguments, show the formation."""
    name = appname.resolve(app)
    client = connect()
    if not changes:
        click.echo(" ".join(f"{e['type']}={e['quantity']}:{e['size']}" for e in _formation(client, name)))
        return
    updates = _scale_changes(changes)
    formation = client.patch(_path(name), {"updates": updates})
    named = {update["type"] for update in updates}
    running = ", ".join(f"{e['type']} at {e['quantity']}:{e['size']}"
                        for e in sorted(formation, key=lambda e: e["type"]) if e["type"] in named)
    output.done("Scaling dynos", f"done, now running {running}")


@click.command("ps:type")
@click.argument("sizes", nargs=-1, metavar="[SIZE | TYPE=SIZE...]")
@app_option
def type_(sizes: tuple[str, ...], app: str | None) -> None:
    """Show dyno sizes, or set them: one SIZE for every process type, or TYPE=SIZE for some."""
    name = appname.resolve(app)
    client = connect()
    if sizes:
        formation = _formation(client, name)
        if any("=" in arg for arg in sizes):
            updates = []
            for arg in sizes:
                match = _RESIZE.match(arg)
                if not match or not any(e["type"] == match.group(1) for e in formation):
                    raise CliError(f"Type {arg.partition('=')[0]} not found in process formation. "
                                   f"Types: {', '.join(e['type'] for e in formation)}.")
                updates.append({"type": match.group(1), "size": match.group(2)})
        elif len(sizes) == 1:
            updates = [{"type": e["type"], "size": sizes[0]} for e in formation]
        else:
            raise click.BadParameter("give one SIZE for every process type, or TYPE=SIZE pairs",
                                     param_hint="SIZE")
        client.patch(_path(name), {"updates": updates})
        output.done(f"Scaling dynos on {name}")
    formation = _formation(client, name)
    output.heading("Process Types")
    output.columns([("type", "size", "qty"), *((e["type"], e["size"], e["quantity"]) for e in formation)])
    totals: dict[str, int] = {}
    for entry in formation:
        totals[entry["size"]] = totals.get(entry["size"], 0) + entry["quantity"]
    click.echo()
    output.heading("Dyno Totals")
    output.columns([("type", "total"), *sorted(totals.items())])


resize = click.Command("ps:resize", callback=type_.callback, params=type_.params,
                       help="Alias of ps:type.")

COMMANDS = [ps, scale, type_, resize]
