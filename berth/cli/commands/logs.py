"""logs, drains, drains:add, drains:remove."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import seg
from berth.cli.errors import CliError
from berth.cli.output import json_option
from berth.cli.session import connect
from berth.cli.streams import print_stream

MASK = "***"


@click.command("logs")
@click.option("-n", "--num", type=click.IntRange(1, 1500), default=100, show_default=True,
              help="Number of lines to show first.")
@click.option("-t", "--tail", is_flag=True, help="Keep streaming new lines (Ctrl-C to stop).")
@click.option("-s", "--source", metavar="SOURCE", help="Only lines from this source (app, heroku, ...).")
@click.option("-d", "--dyno", "--ps", "dyno", metavar="DYNO",
              help="Only this dyno (web.1) or process type (web).")
@click.option("-p", "--process-type", metavar="TYPE", help="Only this process type (web).")
@app_option
def logs(num: int, tail: bool, source: str | None, dyno: str | None, process_type: str | None,
         app: str | None) -> None:
    """Show an app's recent log lines, and with --tail the new ones as they come."""
    if dyno and process_type:
        raise click.UsageError("Use either --dyno or --process-type, not both.")
    name = appname.resolve(app)
    created = connect().post(f"/apps/{seg(name)}/log-sessions",
                             {"lines": num, "tail": tail, "source": source, "dyno": dyno or process_type})
    print_stream(str(created["logplex_url"]), tail)


def masked_url(url: str) -> str:
    """An add-on's drain URL without what authenticates it: the password and every query value
    become ***. The provider chose the URL and its secret; the user need not see (or paste) it."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(f"{name}={MASK}" if sep else name
                     for name, sep, _value in (pair.partition("=") for pair in parts.query.split("&") if pair))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _drains_path(app: str) -> str:
    return f"/apps/{seg(app)}/log-drains"


@click.command("drains")
@app_option
@json_option
def list_drains(app: str | None, as_json: bool) -> None:
    """List an app's log drains (its own and its add-ons')."""
    name = appname.resolve(app)
    found: list[dict[str, Any]] = connect().get(_drains_path(name)) or []
    if as_json:
        output.print_json(found)
        return
    own = [d for d in found if not d.get("addon")]
    addons = [d for d in found if d.get("addon")]
    if not found:
        click.echo(f"{name} has no drains.")
    if own:
        output.heading("Drains")
        for drain in own:
            click.echo(f"{drain.get('url')} ({drain.get('token')})")
    if addons:
        output.heading("Add-on Drains")
        for drain in addons:
            click.echo(f"{drain['addon'].get('name')} ({masked_url(str(drain.get('url') or ''))})")


@click.command("drains:add")
@click.argument("url")
@app_option
def add(url: str, app: str | None) -> None:
    """Add a log drain (https://, http://, syslog:// or syslog+tls://)."""
    drain = connect().post(_drains_path(appname.resolve(app)), {"url": url})
    click.echo(f"Successfully added drain {drain.get('url')}")


@click.command("drains:remove")
@click.argument("url_or_token", metavar="URL_OR_TOKEN")
@app_option
def remove(url_or_token: str, app: str | None) -> None:
    """Remove a log drain by its URL or token."""
    if not url_or_token.strip():
        raise CliError("a drain URL or token is required.")
    drain = connect().delete(f"{_drains_path(appname.resolve(app))}/{seg(url_or_token)}")
    click.echo(f"Successfully removed drain {drain.get('url')}")


COMMANDS = [logs, list_drains, add, remove]
