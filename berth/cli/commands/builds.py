"""builds, builds:info, builds:output, builds:cache:purge."""

from __future__ import annotations

from typing import Any

import click

from berth.cli import appname, output
from berth.cli.appname import app_option
from berth.cli.client import ApiClient, seg
from berth.cli.errors import CliError
from berth.cli.output import json_option
from berth.cli.session import connect
from berth.cli.streams import follow_output


def _newest(client: ApiClient, name: str) -> dict[str, Any]:
    builds = client.get(f"/apps/{seg(name)}/builds", headers={"Range": "created_at ..; max=1, order=desc"})
    if not builds:
        raise CliError(f"{name} has no builds. Push with git, or POST a source to /apps/{name}/builds.")
    return builds[0]


def _build(client: ApiClient, name: str, build_id: str | None) -> dict[str, Any]:
    return client.get(f"/apps/{seg(name)}/builds/{seg(build_id)}") if build_id else _newest(client, name)


def _version(build: dict[str, Any]) -> str:
    return output.text((build.get("source_blob") or {}).get("version"))


@click.command("builds")
@click.option("-n", "--num", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Number of builds to show.")
@app_option
@json_option
def list_builds(num: int, app: str | None, as_json: bool) -> None:
    """List an app's builds, newest first."""
    name = appname.resolve(app)
    builds: list[dict[str, Any]] = connect().get(
        f"/apps/{seg(name)}/builds", headers={"Range": f"created_at ..; max={num}, order=desc"}) or []
    if as_json:
        output.print_json(builds)
        return
    if not builds:
        click.echo(f"{name} has no builds.")
        return
    output.heading(f"{name} Builds")
    output.columns([[b.get("id"), b.get("status"), _version(b), output.text((b.get("user") or {}).get("email")),
                     b.get("created_at")] for b in builds])


@click.command("builds:info")
@click.argument("build_id", required=False)
@app_option
@json_option
def info(build_id: str | None, app: str | None, as_json: bool) -> None:
    """Show one build (default: the newest)."""
    name = appname.resolve(app)
    build = _build(connect(), name, build_id)
    if as_json:
        output.print_json(build)
        return
    output.heading(f"Build {build.get('id')}")
    output.fields([
        ("By", (build.get("user") or {}).get("email")),
        ("Failure", build.get("failure_message")),
        ("Release", (build.get("release") or {}).get("id")),
        ("Slug", (build.get("slug") or {}).get("id")),
        ("Status", build.get("status")),
        ("Version", _version(build)),
        ("When", build.get("created_at")),
    ])


@click.command("builds:output")
@click.argument("build_id", required=False)
@app_option
def build_output(build_id: str | None, app: str | None) -> None:
    """Show a build's output (default: the newest build), following it while it runs; exit 1 if it failed."""
    name = appname.resolve(app)
    client = connect()
    build = _build(client, name, build_id)
    finished = follow_output(client, str(build["output_stream_url"]), f"/apps/{seg(name)}/builds/{seg(str(build['id']))}")
    if finished.get("status") == "failed":
        raise CliError(f"Build {finished['id']} failed: {finished.get('failure_message') or 'see its output above'}.")


_PURGE_WARNING = ("This will delete the build cache for {app}. Clearing your build cache can have unintended "
                  "side effects, such as updating your language version if you don't explicitly specify one.")


@click.command("builds:cache:purge")
@app_option
@click.option("-c", "--confirm", metavar="APP", help="Skip the prompt; must equal the app name.")
def purge_cache(app: str | None, confirm: str | None) -> None:
    """Delete an app's build cache: the next build starts from nothing."""
    name = appname.resolve(app)
    client = connect()
    client.get(f"/apps/{seg(name)}")  # an unknown app is refused before anything is asked
    if confirm is None:
        output.warn(_PURGE_WARNING.format(app=name))
        try:
            confirm = click.prompt(f"To proceed, type {name} or re-run this command with --confirm {name}",
                                   default="", show_default=False, err=True)
        except click.Abort:  # end of input: nobody to ask
            raise CliError(f"No confirmation given. Re-run with --confirm {name} to purge the build cache.") from None
    if confirm != name:
        raise CliError(f"Confirmation {confirm!r} did not match {name}. The build cache was kept.")
    client.delete(f"/apps/{seg(name)}/build-cache")
    output.done(f"Purging build cache for {name}")


COMMANDS = [list_builds, info, build_output, purge_cache]
