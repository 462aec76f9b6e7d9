"""domains, domains:add, domains:remove."""

from __future__ import annotations

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import seg
from berth.cli.output import json_option
from berth.cli.session import connect


def _path(app: str) -> str:
    return f"/apps/{seg(app)}/domains"


@click.command("domains")
@app_option
@json_option
def show(app: str | None, as_json: bool) -> None:
    """List the host names the app is served under."""
    name = appname.resolve(app)
    domains = connect().get_all(_path(name))
    if as_json:
        output.print_json(domains)
        return
    default = [d["hostname"] for d in domains if d["kind"] == "heroku"]
    custom = [d for d in domains if d["kind"] == "custom"]
    output.heading(f"{name} Berth Domain")
    for hostname in default:
        click.echo(hostname)
    if custom:
        click.echo()
        output.heading(f"{name} Custom Domains")
        output.columns([("Domain Name", "DNS Target"), *((d["hostname"], d["cname"]) for d in custom)])


@click.command("domains:add")
@click.argument("hostname")
@app_option
@json_option
def add(hostname: str, app: str | None, as_json: bool) -> None:
    """Serve the app under HOSTNAME too (point its DNS at the DNS target)."""
    name = appname.resolve(app)
    domain = connect().post(_path(name), {"hostname": hostname})
    if as_json:
        output.print_json(domain)
        return
    output.done(f"Adding {domain['hostname']} to {name}")
    click.echo(f"Configure your app's DNS provider to point to the DNS Target {domain['cname']}")


@click.command("domains:remove")
@click.argument("hostname")
@app_option
def remove(hostname: str, app: str | None) -> None:
    """Stop serving the app under HOSTNAME."""
    name = appname.resolve(app)
    connect().delete(f"{_path(name)}/{seg(hostname)}")
    output.done(f"Removing {hostname} from {name}")


COMMANDS = [show, add, remove]
