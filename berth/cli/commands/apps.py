"""apps, apps:create, apps:info, apps:rename, apps:destroy, open."""

from __future__ import annotations

import webbrowser
from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import seg
from berth.cli.errors import CliError
from berth.cli.output import json_option
from berth.cli.session import connect


def _urls(app: dict[str, Any]) -> str:
    return f"{output.text(app.get('web_url'))} | {output.text(app.get('git_url'))}"


@click.command("apps")
@json_option
def list_apps(as_json: bool) -> None:
    """List your apps (owned and collaborated)."""
    apps = connect().get_all("/users/~/apps")
    if as_json:
        output.print_json(apps)
    elif not apps:
        click.echo("You have no apps.")
    else:
        for name in sorted(a["name"] for a in apps):
            click.echo(name)


@click.command("apps:create")
@click.argument("name", required=False)
@json_option
def create(name: str | None, as_json: bool) -> None:
    """Create an app (the server picks a name if NAME is omitted)."""
    app = connect().post("/apps", {"name": name} if name else {})
    if as_json:
        output.print_json(app)
    else:
        output.done(f"Creating {app['name']}")
        click.echo(_urls(app))


@click.command("apps:info")
@app_option
@json_option
def info(app: str | None, as_json: bool) -> None:
    """Show an app's details."""
    data = connect().get(f"/apps/{seg(appname.resolve(app))}")
    if as_json:
        output.print_json(data)
        return
    output.heading(data["name"])
    output.fields([
        ("Owner", (data.get("owner") or {}).get("email")),
        ("Region", (data.get("region") or {}).get("name")),
        ("Stack", (data.get("stack") or {}).get("name")),
        ("Web URL", data.get("web_url")),
        ("Git URL", data.get("git_url")),
        ("Maintenance", "on" if data.get("maintenance") else "off"),
        ("Created", data.get("created_at")),
    ])


@click.command("apps:rename")
@click.argument("newname")
@app_option
@json_option
def rename(newname: str, app: str | None, as_json: bool) -> None:
    """Rename an app."""
    old = appname.resolve(app)
    data = connect().patch(f"/apps/{seg(old)}", {"name": newname})
    if as_json:
        output.print_json(data)
    else:
        output.done(f"Renaming {old} to {data['name']}")
        click.echo(_urls(data))


@click.command("apps:destroy")
@app_option
@click.option("--confirm", metavar="APP", help="Skip the prompt; must equal the app name.")
@json_option
def destroy(app: str | None, confirm: str | None, as_json: bool) -> None:
    """Permanently destroy an app and its add-ons."""
    client = connect()
    target = client.get(f"/apps/{seg(appname.resolve(app))}")  # 404 before asking anything
    name = target["name"]
    if confirm is None:
        output.warn(f"This will delete {name} including all add-ons.")
        confirm = click.prompt(f"To proceed, type {name}", default="", show_default=False)
    if confirm != name:
        raise CliError(f"Confirmation {confirm!r} did not match {name}. Nothing was deleted.")
    data = client.delete(f"/apps/{seg(target.get('id') or name)}")
    if as_json:
        output.print_json(data)
    else:
        output.done(f"Destroying {name} (including all add-ons)")


@click.command("open")
@click.argument("path", required=False, default="")
@app_option
def open_app(path: str, app: str | None) -> None:
    """Open the app's web URL (plus PATH) in a browser; the URL is printed either way, for a machine
    without one."""
    data = connect().get(f"/apps/{seg(appname.resolve(app))}")
    url = str(data.get("web_url") or "")
    if not url:
        raise CliError(f"{data.get('name')} has no web URL.")
    url = url.rstrip("/") + "/" + path.lstrip("/")
    click.echo(f"Opening {url}")
    if not webbrowser.open(url):
        click.echo("No browser could be started here: open that address yourself.", err=True)


COMMANDS = [list_apps, create, info, rename, destroy, open_app]
