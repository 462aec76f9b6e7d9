"""buildpacks, buildpacks:add, buildpacks:set, buildpacks:remove, buildpacks:clear (Heroku's wording).

The server checks every reference (a built-in such as `python` or `heroku/python`, a git or tarball
URL); these commands only order the list and PUT it whole, as the Heroku CLI does.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import GIT_REMOTE, app_option
from berth.cli.client import ApiClient, seg
from berth.cli.errors import CliError
from berth.cli.output import json_option
from berth.cli.session import connect

Installed = list[dict[str, Any]]

index_option: Callable[[Any], Any] = click.option(
    "-i", "--index", type=int, metavar="N", help="1-based position of the buildpack in the list.")


def _path(app: str) -> str:
    return f"/apps/{seg(app)}/buildpack-installations"


def _fetch(client: ApiClient, app: str) -> Installed:
    return sorted(client.get(_path(app)) or [], key=lambda b: b.get("ordinal", 0))


def _url(installed: dict[str, Any]) -> str:
    return str((installed.get("buildpack") or {}).get("url") or "")


def _name(installed: dict[str, Any]) -> str:
    """What the server calls it (`heroku/python` for a built-in however it was set), else its URL."""
    return str((installed.get("buildpack") or {}).get("name") or _url(installed))


def _position(installed: Installed, reference: str) -> int:
    """Where `reference` is in the list (by URL, name, or a built-in's bare name), else -1."""
    for position, item in enumerate(installed):
        if reference in (_url(item), _name(item)) or f"heroku/{reference}" == _name(item):
            return position
    return -1


def _check_index(index: int | None) -> None:
    if index is not None and index <= 0:
        raise CliError("Invalid index. Must be greater than 0.")


def _put(client: ApiClient, app: str, urls: list[str]) -> Installed:
    return client.call("PUT", _path(app), body={"updates": [{"buildpack": url} for url in urls]}) or []


def _show(installed: Installed, indent: str = "") -> None:
    if len(installed) == 1:
        click.echo(f"{indent}{_name(installed[0])}")
        return
    for number, item in enumerate(installed, start=1):
        click.echo(f"{indent}{number}. {_name(item)}")


def _changed(app: str, installed: Installed, action: str, as_json: bool) -> None:
    if as_json:
        output.print_json(installed)
        return
    push = f"git push {GIT_REMOTE} main"
    if len(installed) == 1:
        click.echo(f"Buildpack {action}. Next release on {app} will use {_name(installed[0])}.")
        click.echo(f"Run {push} to create a new release using this buildpack.")
    else:
        click.echo(f"Buildpack {action}. Next release on {app} will use:")
        _show(installed, "  ")
        click.echo(f"Run {push} to create a new release using these buildpacks.")


def _cleared(client: ApiClient, app: str, message: str, as_json: bool) -> None:
    _put(client, app, [])
    if as_json:
        output.print_json([])
        return
    config = client.get(f"/apps/{seg(app)}/config-vars") or {}
    if config.get("BUILDPACK_URL"):
        click.echo(message)
        output.warn("The BUILDPACK_URL config var is still set and will be used for the next release.")
    else:
        click.echo(f"{message} Next release on {app} will detect buildpacks normally.")


@click.command("buildpacks")
@app_option
@json_option
def list_buildpacks(app: str | None, as_json: bool) -> None:
    """List an app's buildpacks, in the order its builds run them."""
    name = appname.resolve(app)
    installed = _fetch(connect(), name)
    if as_json:
        output.print_json(installed)
    elif not installed:
        click.echo(f"{name} has no Buildpacks.")
    else:
        output.heading(f"{name} Buildpack{'s' if len(installed) > 1 else ''}")
        _show(installed)


def _place(buildpack: str, index: int | None, app: str | None, as_json: bool, action: str,
           placed: Callable[[list[str], int | None], None]) -> None:
    """Put `buildpack` into the app's list where `placed` says (it edits the list of URLs in place)."""
    _check_index(index)
    name = appname.resolve(app)
    client = connect()
    installed = _fetch(client, name)
    if _position(installed, buildpack) != -1:
        raise CliError(f"The buildpack {buildpack} is already set on your app.")
    urls = [_url(item) for item in installed]
    placed(urls, index)
    _changed(name, _put(client, name, urls), action, as_json)


@click.command("buildpacks:add")
@click.argument("buildpack")
@index_option
@app_option
@json_option
def add(buildpack: str, index: int | None, app: str | None, as_json: bool) -> None:
    """Add a buildpack (a built-in name, or a git or tarball URL), last or at --index."""
    def insert(urls: list[str], index: int | None) -> None:
        urls.insert(len(urls) if index is None else min(index - 1, len(urls)), buildpack)

    _place(buildpack, index, app, as_json, "added", insert)


@click.command("buildpacks:set")
@click.argument("buildpack")
@index_option
@app_option
@json_option
def set_buildpack(buildpack: str, index: int | None, app: str | None, as_json: bool) -> None:
    """Set the buildpack at --index (default 1), replacing the one there; past the end, append it."""
    def replace(urls: list[str], index: int | None) -> None:
        position = (index or 1) - 1
        if position < len(urls):
            urls[position] = buildpack
        else:
            urls.append(buildpack)

    _place(buildpack, index, app, as_json, "set", replace)


@click.command("buildpacks:remove")
@click.argument("buildpack", required=False)
@index_option
@app_option
@json_option
def remove(buildpack: str | None, index: int | None, app: str | None, as_json: bool) -> None:
    """Remove a buildpack, named by its URL or by its --index."""
    if index is not None and buildpack:
        raise CliError("Please choose either index or Buildpack, but not both.")
    if index is None and not buildpack:
        raise CliError("Must specify a buildpack to remove, either by index or URL: "
                       "berth buildpacks:remove URL, or berth buildpacks:remove --index N.")
    name = appname.resolve(app)
    client = connect()
    installed = _fetch(client, name)
    if not installed:
        raise CliError(f"No buildpacks were found. Next release on {name} will detect buildpack normally.")
    if index is not None:
        if not 1 <= index <= len(installed):
            raise CliError("Invalid index. Only valid value is 1." if len(installed) == 1 else
                           f"Invalid index. Please choose a value between 1 and {len(installed)}.")
        position = index - 1
    else:
        position = _position(installed, str(buildpack))
        if position == -1:
            raise CliError("Buildpack not found. Nothing was removed.")
    if len(installed) == 1:
        _cleared(client, name, "Buildpack removed.", as_json)
        return
    urls = [_url(item) for number, item in enumerate(installed) if number != position]
    _changed(name, _put(client, name, urls), "removed", as_json)


@click.command("buildpacks:clear")
@app_option
@json_option
def clear(app: str | None, as_json: bool) -> None:
    """Remove all of an app's buildpacks: its next build detects them."""
    name = appname.resolve(app)
    _cleared(connect(), name, "Buildpacks cleared.", as_json)


COMMANDS = [list_buildpacks, add, set_buildpack, remove, clear]
