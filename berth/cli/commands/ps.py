"""ps, ps:scale, ps:type (alias ps:resize), ps:restart, ps:stop: an app's formation and dynos, as
the Heroku CLI shows and changes them."""

from __future__ import annotations

import re
from datetime import datetime, timezone
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


def _formation(client: ApiClient, app: str, *, required: bool = True) -> list[dict[str, Any]]:
    formation: list[dict[str, Any]] = client.get(_path(app)) or []
    if not formation and required:
        raise CliError(_no_process_types(app))
    return sorted(formation, key=lambda entry: entry["type"])


def _no_process_types(app: str) -> str:
    return (f"No process types on {app}. Upload a Procfile to add process types "
            "(https://devcenter.heroku.com/articles/procfile).")


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
    """Show the app's process types, how many dynos each should run, and the dynos running."""
    name = appname.resolve(app)
    client = connect()
    formation = _formation(client, name, required=False)
    dynos: list[dict[str, Any]] = client.get(f"/apps/{seg(name)}/dynos") or []
    if not formation and not dynos:  # one-off dynos run without process types (code without a Procfile)
        raise CliError(_no_process_types(name))
    if as_json:
        output.print_json({"formation": formation, "dynos": dynos})
        return
    one_offs = [dyno for dyno in dynos if dyno["type"] == "run"]
    if one_offs:
        output.heading(f"run: one-off processes ({len(one_offs)})")
        for dyno in one_offs:
            click.echo(f"{dyno['name']} ({dyno['size']}): {dyno['state']} {_since(dyno)}: {dyno['command']}")
        click.echo()
    _print_formation(formation, [dyno for dyno in dynos if dyno["type"] != "run"])
    if not dynos:
        click.echo(f"No dynos on {name}.")


def _print_formation(formation: list[dict[str, Any]], formation_dynos: list[dict[str, Any]]) -> None:
    by_type = {entry["type"]: entry for entry in formation}
    for kind in sorted(set(by_type) | {dyno["type"] for dyno in formation_dynos}):
        of_type = [dyno for dyno in formation_dynos if dyno["type"] == kind]
        entry = by_type.get(kind)
        if entry:  # the type as it should be, with its dynos running its command
            output.heading(f"{kind} ({entry['size']}): {entry['command']} ({entry['quantity']})")
            _print_dynos([dyno for dyno in of_type if dyno["command"] == entry["command"]])
        # Dynos of another command (an old release's, while a deploy rolls), grouped as Heroku's CLI does.
        for command in dict.fromkeys(dyno["command"] for dyno in of_type if not entry or dyno["command"] != entry["command"]):
            group = [dyno for dyno in of_type if dyno["command"] == command]
            output.heading(f"{kind} ({group[0]['size']}): {command} ({len(group)})")
            _print_dynos(group)


def _print_dynos(dynos: list[dict[str, Any]]) -> None:
    for dyno in sorted(dynos, key=_number):
        click.echo(f"{dyno['name']}: {dyno['state']} {_since(dyno)}")
    click.echo()


def _number(dyno: dict[str, Any]) -> int:
    number = str(dyno["name"]).rpartition(".")[2]
    return int(number) if number.isdigit() else 0


def _since(dyno: dict[str, Any]) -> str:
    """When the dyno's state last changed, as the Heroku CLI prints it: local time, then how long ago."""
    when = datetime.fromisoformat(str(dyno["updated_at"]).replace("Z", "+00:00"))
    shown = when.astimezone().strftime("%Y/%m/%d %H:%M:%S %z")
    elapsed = int((datetime.now(timezone.utc) - when).total_seconds())
    if elapsed < 60:
        return f"{shown} (~ {max(elapsed, 0)}s ago)"
    if elapsed < 3600:
        return f"{shown} (~ {elapsed // 60}m ago)"
    if elapsed < 25 * 3600:
        return f"{shown} (~ {elapsed // 3600}h ago)"
    return shown


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

def _target(name: str, target: str | None, dyno_name: str | None,
            process_type: str | None) -> tuple[str, str] | None:
    """(the words for it, the path part) of what a restart or stop names, as the Heroku CLI takes it:
    the argument (a dyno, web.1, or a process type, web), --dyno-name or --process-type; None: nothing."""
    if sum(given is not None for given in (target, dyno_name, process_type)) > 1:
        raise click.UsageError("Name what to act on once: DYNO|TYPE, --dyno-name or --process-type.")
    if process_type is not None or (target is not None and "." not in target):
        kind = process_type if process_type is not None else target
        return f"all {kind} dynos on {name}", f"/apps/{seg(name)}/formations/{seg(str(kind))}"
    dyno = dyno_name if dyno_name is not None else target
    if dyno is not None:
        return f"dyno {dyno} on {name}", f"/apps/{seg(name)}/dynos/{seg(dyno)}"
    return None


def _target_options(command: Any) -> Any:
    command = click.option("-p", "--process-type", "process_type", metavar="TYPE",
                           help="Every dyno of this process type (web).")(command)
    return click.option("-d", "--dyno-name", "dyno_name", metavar="DYNO",
                        help="This dyno (web.1, run.3, release.2).")(command)


@click.command("ps:restart")
@click.argument("target", required=False, metavar="[DYNO|TYPE]")
@_target_options
@app_option
def restart(target: str | None, dyno_name: str | None, process_type: str | None, app: str | None) -> None:
    """Restart one dyno (web.1 or --dyno-name web.1), every dyno of a process type (web or
    --process-type web), or every dyno of the app."""
    name = appname.resolve(app)
    words, path = _target(name, target, dyno_name, process_type) or (f"all dynos on {name}", f"/apps/{seg(name)}/dynos")
    connect().delete(path)
    output.done(f"Restarting {words}")


@click.command("ps:stop")
@click.argument("target", required=False, metavar="DYNO|TYPE")
@_target_options
@app_option
def stop(target: str | None, dyno_name: str | None, process_type: str | None, app: str | None) -> None:
    """Stop one dyno (web.1 or --dyno-name web.1) or every dyno of a process type (web or
    --process-type web). Formation dynos are started again by the runner; a one-off dyno (run.1)
    ends; stopping a release phase's dyno (release.2) fails that release."""
    name = appname.resolve(app)
    named = _target(name, target, dyno_name, process_type)
    if named is None:
        raise click.UsageError("Missing argument: name a dyno (web.1, or --dyno-name web.1) or a process type "
                               "(web, or --process-type web) to stop.")
    words, path = named
    connect().post(f"{path}/actions/stop")
    output.done(f"Stopping {words}")


COMMANDS = [ps, scale, type_, resize, restart, stop]
